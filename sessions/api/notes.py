"""Treatment sessions and notes over the API.

Clinical roles (and API keys with `clinical:*`) read and write notes. Anyone else who asks
for a note gets 404, as if it did not exist, and the attempt is audited as denied.
Receptionists see that a session happened through `/treatment-sessions/` (no content).
"""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from clinic.api.clinical import ClinicalAccessMixin, require_clinical_access, scope_clinical_list
from clinic.api.conventions import BreakGlassRequiredError, ClinicAccess, ClinicScopedMixin, Conflict
from clinic.api.inputs import UtcIsoDateTimeFilter
from clinic.models import AuditAction
from clinic.security.access import BreakGlassRequired
from clinic.security.audit import audit_record
from patients.models import Patient
from sessions import selectors, services
from sessions.models import ENTRY_MODELS, TreatmentSession, related_rows
from sessions.serializers import (
    ENTRY_SERIALIZERS,
    AddendumCreateSerializer,
    AddendumSerializer,
    EntryCreateSerializer,
    EntryKindSerializer,
    NoteCreateSerializer,
    NoteSerializer,
    NoteUpdateSerializer,
    PainSeriesSerializer,
    SessionSummarySerializer,
)


def _actor(request):
    user = request.user
    return user if user is not None and user.is_authenticated else None


def _refuse_api_keys(request, message: str) -> None:
    """Signing and addenda record the clinician who did them; a key has no person behind it."""
    if _actor(request) is None:
        raise PermissionDenied(message)


class SessionFilter(filters.FilterSet):
    """A therapist's day (`?practitioner=&started_from=&started_to=`) or a patient's history."""

    started_from = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_to = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="lt")

    class Meta:
        model = TreatmentSession
        fields = ["patient", "practitioner", "status"]


class SessionSummaryViewSet(ClinicScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Every staff role: which sessions happened, and whether their note is signed."""

    api_scope = "appointments"
    queryset = TreatmentSession.objects.all()
    serializer_class = SessionSummarySerializer
    filterset_class = SessionFilter


class NoteViewSet(
    ClinicalAccessMixin,
    ClinicScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Notes change by PATCH only (a PUT would have to resend the entries and the signature)."""

    queryset = TreatmentSession.objects.none()
    serializer_class = NoteSerializer
    filterset_class = SessionFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no clinic
            return TreatmentSession.objects.none()
        notes = selectors.notes_with_content().filter(clinic=self.request.clinic)
        if self.action == "list":
            return scope_clinical_list(notes, self.request)
        return notes.select_related("patient")  # one note: its patient is checked for clinical access

    def filter_queryset(self, queryset):
        if self.detail and not self.request.query_params:
            return queryset  # one note, no parameters: no FilterSet to build (it would filter nothing)
        return super().filter_queryset(queryset)

    def get_object(self):
        session = super().get_object()
        require_clinical_access(self.request, session.patient)
        return session

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        rows = response.data.get("results", [])
        audit_record(
            action=AuditAction.LIST,
            clinic=request.clinic,
            request=request,
            via="api",
            extra={"object_type": "treatment_sessions.treatmentsession", "ids": [row["id"] for row in rows]},
        )
        return response

    def retrieve(self, request, *args, **kwargs):
        session = self.get_object()
        audit_record(action=AuditAction.VIEW, obj=session, request=request, via="api")
        return Response(NoteSerializer(session, context=self.get_serializer_context()).data)

    @extend_schema(request=NoteCreateSerializer, responses={201: NoteSerializer})
    def create(self, request, *args, **kwargs):
        incoming = NoteCreateSerializer(data=request.data, context=self.get_serializer_context())
        incoming.is_valid(raise_exception=True)
        try:  # the service decides who may open a note for whom, and audits a refusal
            session = services.session_start(
                clinic=request.clinic, actor=_actor(request), request=request, via="api", **incoming.validated_data
            )
        except BreakGlassRequired:
            raise BreakGlassRequiredError() from None
        return Response(self._full(session), status=status.HTTP_201_CREATED)

    @extend_schema(request=NoteUpdateSerializer, responses=NoteSerializer)
    def partial_update(self, request, *args, **kwargs):
        session = self.get_object()
        incoming = NoteUpdateSerializer(session, data=request.data, partial=True)
        incoming.is_valid(raise_exception=True)
        with _locked_is_conflict():
            session = services.note_update(
                session=session, actor=_actor(request), request=request, via="api", **incoming.validated_data
            )
        return Response(self._full(session))

    @extend_schema(request=None, responses={200: NoteSerializer, 409: None})
    @action(detail=True, methods=["post"])
    def sign(self, request, pk=None):
        session = self.get_object()
        _refuse_api_keys(request, "Notes are signed by the treating practitioner, signed in, not by an API key.")
        with _locked_is_conflict():
            session = services.note_sign(session=session, actor=_actor(request), request=request, via="api")
        return Response(self._full(session))

    @extend_schema(request=AddendumCreateSerializer, responses={201: AddendumSerializer})
    @action(detail=True, methods=["post"], serializer_class=AddendumCreateSerializer)
    def addenda(self, request, pk=None):
        session = self.get_object()
        _refuse_api_keys(request, "An addendum records its author: write it signed in, not with an API key.")
        incoming = AddendumCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        addendum = services.note_addendum_add(
            session=session, text=incoming.validated_data["text"], actor=_actor(request), request=request, via="api"
        )
        return Response(AddendumSerializer(addendum).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=EntryCreateSerializer,
        responses={201: PolymorphicProxySerializer("Entry", {str(k): v for k, v in ENTRY_SERIALIZERS.items()}, "kind")},
    )
    @action(detail=True, methods=["post"], url_path="entries")
    def entries(self, request, pk=None):
        """Add one entry: `{"kind": "art" | "massage" | "acupuncture" | "home_care", ...fields}`."""
        session = self.get_object()
        kind = EntryKindSerializer(data=request.data)
        kind.is_valid(raise_exception=True)
        serializer_class = ENTRY_SERIALIZERS[kind.validated_data["kind"]]
        fields = {name: value for name, value in request.data.items() if name != "kind"}
        incoming = serializer_class(data=fields, context=self.get_serializer_context())
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        trigger_points = data.pop("trigger_points", None)
        entry = ENTRY_MODELS[kind.validated_data["kind"]](session=session, **data)
        with _locked_is_conflict():
            entry = services.entry_add(
                entry=entry, actor=_actor(request), trigger_points=trigger_points, request=request, via="api"
            )
        return Response(serializer_class(entry, context=self.get_serializer_context()).data, status=201)

    @extend_schema(
        request=None,
        responses={204: None},
        parameters=[
            OpenApiParameter("kind", str, OpenApiParameter.PATH),
            OpenApiParameter("entry_id", int, OpenApiParameter.PATH),
        ],
    )
    @action(detail=True, methods=["delete"], url_path=r"entries/(?P<kind>[a-z_]+)/(?P<entry_id>[0-9]+)")
    def entry_delete(self, request, pk=None, kind=None, entry_id=None):
        session = self.get_object()
        model = ENTRY_MODELS.get(kind)
        entry = model.objects.filter(session=session, pk=entry_id).first() if model else None
        if entry is None:
            raise NotFound()
        with _locked_is_conflict():
            services.entry_delete(entry=entry, actor=_actor(request), request=request, via="api")
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def export(self, request, pk=None):
        """The signed record as a document: content, signature, hash check and addenda."""
        session = self.get_object()
        audit_record(action=AuditAction.EXPORT, obj=session, request=request, via="api")
        document = {
            "note": services.signed_content(session),
            "content_hash": session.content_hash,
            "hash_verified": services.note_verify(session),
            "addenda": AddendumSerializer(related_rows(session, "addenda"), many=True).data,
        }
        return Response(document)

    def _full(self, session):
        session = self.get_queryset().get(pk=session.pk)
        return NoteSerializer(session, context=self.get_serializer_context()).data


class _locked_is_conflict:  # noqa: N801 - used as a context manager
    """A signed note answers 409, whatever the change."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, services.NoteLockedError):
            raise Conflict(exc.message) from exc
        return False


class PainSeriesView(ClinicalAccessMixin, APIView):
    """GET /pain-series/<patient id>/: pain before and after, session by session."""

    permission_classes = [ClinicAccess]
    isolation_model = Patient  # the object behind {patient_id}, for the generated API tests

    @extend_schema(responses=PainSeriesSerializer)
    def get(self, request, patient_id: int):
        if request.query_params:  # no filters here; an ignored parameter would look like one worked
            raise ValidationError({name: ["Unknown query parameter."] for name in request.query_params})
        patient = Patient.objects.filter(clinic=request.clinic, pk=patient_id).first()
        if patient is None:
            raise NotFound()
        require_clinical_access(request, patient)
        points = selectors.pain_series(clinic=request.clinic, patient_id=patient.pk)
        audit_record(
            action=AuditAction.VIEW, obj=patient, request=request, via="api", extra={"resource": "pain_series"}
        )
        return Response(PainSeriesSerializer({"patient": patient.pk, "points": points}).data)
