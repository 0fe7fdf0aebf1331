"""Patients API: list with search and filters, create (with the duplicate check), read, update, archive."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, renderers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from clinic.api.conventions import ClinicScopedMixin, Conflict, Gone, error_response
from clinic.api.idempotency import IdempotentCreateMixin, idempotent
from clinic.api.inputs import UpdatedSinceFilterSet, UtcIsoDateTimeFilter
from clinic.api.serializers import (
    ExportJobCreateSerializer,
    ExportJobSerializer,
    ImportJobCreateSerializer,
    ImportJobSerializer,
)
from clinic.models import ApiKey, ExportFormat, ExportJob, ImportJob
from clinic.security.roles import ALL_ROLES, OWNERS
from patients.csv_io import (
    ExportGone,
    ExportNotReady,
    export_job_download,
    export_job_submit,
    export_kinds,
    export_requester,
    import_job_submit,
)
from patients.models import Patient, normalise_search
from patients.serializers import PatientExtra, PatientSerializer, patient_extra_add, patient_extras
from patients.services import (
    DuplicatePatientError,
    patient_archive,
    patient_create,
    patient_unarchive,
    patient_update,
)


class PatientFilterSet(filters.FilterSet):
    q = filters.CharFilter(method="search", help_text="Part of a name, email or phone number (3+ characters).")
    updated_since = UtcIsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Patient
        fields = ["is_archived", "preferred_channel"]

    def search(self, queryset, name, value):
        if not value.strip():
            return queryset
        if len(normalise_search(value).replace(" ", "")) < 3:
            # Shorter terms can't use the trigram index: they would scan every patient.
            raise ValidationError({"q": ["Type at least 3 characters."]})
        return queryset.search(value)


def patient_extra_register(extra: PatientExtra) -> None:
    """Show `extra` with every patient of the API: its field on the patient, its prefetch on
    every read, and its boolean filter on the list. Called from the owning app's ready()."""
    patient_extra_add(extra)
    if extra.filter_name:
        PatientFilterSet.base_filters[extra.filter_name] = filters.BooleanFilter(
            method=lambda queryset, name, value: extra.filter(queryset, value), help_text=extra.filter_help
        )


class PatientViewSet(
    ClinicScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Patients of the caller's clinic. Records are archived, never deleted."""

    allowed_roles = ALL_ROLES
    api_scope = "patients"
    serializer_class = PatientSerializer
    filterset_class = PatientFilterSet
    ordering_fields = ["id", "updated_at"]
    queryset = Patient.objects.all()
    idempotent_actions = ("create",)

    def get_queryset(self):
        # What other apps show with every patient (intake: active flags), in one query each.
        prefetches = [extra.prefetch(self.request) for extra in patient_extras()]
        return super().get_queryset().prefetch_related(*prefetches)

    def create(self, request, *args, **kwargs):
        # A retried create (same Idempotency-Key) replays the first 201 instead of a second patient.
        return idempotent(request, lambda: self._create(request))

    def _create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        allow_duplicate = data.pop("allow_duplicate", False)
        try:
            patient = patient_create(clinic=request.clinic, data=data, allow_duplicate=allow_duplicate, source="api")
        except DuplicatePatientError as exc:
            return error_response(
                status.HTTP_409_CONFLICT,
                "A patient with the same name and birth date, email or phone already exists. "
                "Use that record, or send allow_duplicate=true to create a new one.",
                {"duplicates": [{"id": p.pk, "name": p.full_name, "birth_date": p.birth_date} for p in exc.matches]},
            )
        return Response(self.get_serializer(patient).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        patient = self.get_object()
        serializer = self.get_serializer(patient, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.pop("allow_duplicate", None)
        patient = patient_update(patient=patient, data=data, source="api")
        return Response(self.get_serializer(patient).data)

    @extend_schema(request=None, responses=PatientSerializer)
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        return Response(self.get_serializer(patient_archive(patient=self.get_object())).data)

    @extend_schema(request=None, responses=PatientSerializer)
    @action(detail=True, methods=["post"])
    def unarchive(self, request, pk=None):
        return Response(self.get_serializer(patient_unarchive(patient=self.get_object())).data)


# --- CSV import jobs ---------------------------------------------------------------------


class _ImportSubmit:
    def create(self, request, *args, **kwargs):
        data = ImportJobCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = import_job_submit(
            clinic=request.clinic,
            csv_text=data.validated_data["csv"],
            mapping=data.validated_data["mapping"],
            dry_run=data.validated_data["dry_run"],
            date_format=data.validated_data["date_format"],
            created_by=request.user if request.user.is_authenticated else None,
        )
        # The job, not the upload, is the response (and what Idempotency-Key replays).
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(create=extend_schema(request=ImportJobCreateSerializer, responses={202: ImportJobSerializer}))
class PatientImportViewSet(
    IdempotentCreateMixin,
    _ImportSubmit,
    ClinicScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """CSV imports of patients, run by a worker: all rows or none. Poll the job for its outcome.

    Same rules as `manage.py import_patients`; `errors` maps CSV line numbers to field errors.
    """

    allowed_roles = OWNERS
    api_scope = "patients"
    queryset = ImportJob.objects.filter(kind="patients")
    serializer_class = ImportJobSerializer
    ordering_fields = ["id"]

    class filterset_class(UpdatedSinceFilterSet):  # noqa: N801
        class Meta:
            model = ImportJob
            fields = ["status"]


# --- export jobs -------------------------------------------------------------------------

EXPORT_MEDIA = {ExportFormat.CSV: "text/csv", ExportFormat.NDJSON: "application/fhir+ndjson"}


class _FileRenderer(renderers.BaseRenderer):
    """Lets a client ask for the file's own type; errors still go out as JSON text."""

    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, str | bytes):
            return data
        return renderers.JSONRenderer().render(data)


class CsvRenderer(_FileRenderer):
    media_type, format = "text/csv", "csv"


class NdjsonRenderer(_FileRenderer):
    media_type, format = "application/fhir+ndjson", "ndjson"


@extend_schema_view(create=extend_schema(request=ExportJobCreateSerializer, responses={202: ExportJobSerializer}))
class ExportJobViewSet(ClinicScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Patients or appointments as CSV or FHIR NDJSON, written by a worker: poll the job, then
    download the file once (`download`), within 24 hours. Only whoever asked downloads it; an API
    key sees its own jobs, owners see every export of the clinic (what left it, and when).

    Owners only. An API key needs `exports:write` to ask, `exports:read` to poll and download,
    and the read scope of what it exports (`patients:read`, `appointments:read`).
    """

    allowed_roles = OWNERS
    api_scope = "exports"
    queryset = ExportJob.objects.all()
    serializer_class = ExportJobSerializer
    ordering_fields = ["id"]
    idempotent_actions = ("create",)

    class filterset_class(UpdatedSinceFilterSet):  # noqa: N801
        class Meta:
            model = ExportJob
            fields = ["status", "kind", "format"]

    def get_queryset(self):
        jobs = super().get_queryset()
        key = self.request.auth if isinstance(self.request.auth, ApiKey) else None
        return jobs.filter(created_by_key=key) if key else jobs

    def create(self, request, *args, **kwargs):
        # A retried request (same Idempotency-Key) replays the first 202 instead of a second export.
        return idempotent(request, lambda: self._submit(request))

    def _submit(self, request):
        data = ExportJobCreateSerializer(data=request.data, kinds=export_kinds())
        data.is_valid(raise_exception=True)
        kind, export_format = data.validated_data["kind"], data.validated_data["format"]
        if isinstance(request.auth, ApiKey) and not request.auth.has_scope(f"{kind}:read"):
            raise PermissionDenied(f"This API key lacks the scope {kind}:read, which exporting {kind} needs.")
        try:
            job = export_job_submit(clinic=request.clinic, kind=kind, export_format=export_format, request=request)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        return Response(ExportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=None,
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The CSV file (once)."),
            (200, "application/fhir+ndjson"): OpenApiResponse(OpenApiTypes.STR, description="One resource per line."),
            403: OpenApiResponse(description="Someone else asked for this export."),
            410: OpenApiResponse(description="Downloaded already, expired, or failed: request a new export."),
        },
    )
    @action(detail=True, methods=["get"], renderer_classes=[renderers.JSONRenderer, CsvRenderer, NdjsonRenderer])
    def download(self, request, pk=None):
        job = self.get_object()
        asked = export_requester(request)
        if (job.created_by_id, job.created_by_key_id) != tuple(getattr(asked[k], "pk", None) for k in asked):
            raise PermissionDenied("Only whoever asked for an export can download it.")
        try:
            content, job = export_job_download(job=job, request=request)
        except ExportNotReady as exc:
            raise Conflict(str(exc)) from None
        except ExportGone as exc:
            raise Gone(str(exc)) from None
        extension = "csv" if job.format == ExportFormat.CSV else "ndjson"
        response = HttpResponse(content, content_type=f"{EXPORT_MEDIA[job.format]}; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{job.clinic.slug}-{job.kind}-{job.pk}.{extension}"'
        response["Cache-Control"] = "no-store"
        return response
