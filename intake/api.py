"""Intake API: questionnaires, links (create, revoke, resend), submissions (clinical roles), flags."""

from __future__ import annotations

from django.db.models import Prefetch, Q
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from clinic.api.clinical import require_clinical_access, scope_clinical_list
from clinic.api.conventions import ClinicScopedMixin
from clinic.api.idempotency import IdempotentCreateMixin
from clinic.models import AuditAction
from clinic.security.audit import audit_record
from clinic.security.roles import ALL_ROLES, CLINICAL_ROLES
from intake.fhir import questionnaire_to_fhir, submission_to_fhir
from intake.flag_detail import flag_detail_rule, with_flag_detail
from intake.models import IntakeLink, IntakeSubmission, PatientFlag, Questionnaire
from intake.serializers import (
    FlagClearSerializer,
    FlagSerializer,
    FlagSummarySerializer,
    IntakeLinkSerializer,
    QuestionnaireSerializer,
    SubmissionSerializer,
)
from intake.services import flag_acknowledge, flag_clear, intake_link_resend, intake_link_revoke, intake_links_create
from patients.serializers import PatientExtra


class QuestionnaireViewSet(viewsets.ReadOnlyModelViewSet):
    """Questionnaire versions this clinic can use: its own and the shared ones."""

    allowed_roles = ALL_ROLES
    api_scope = "intake"
    serializer_class = QuestionnaireSerializer
    queryset = Questionnaire.objects.all()
    filterset_fields = ["code", "status"]

    def get_queryset(self):
        return super().get_queryset().filter(Q(clinic=self.request.clinic) | Q(clinic__isnull=True))

    @extend_schema(responses={(200, "application/fhir+json"): OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def fhir(self, request, pk=None):
        return Response(questionnaire_to_fhir(self.get_object()), content_type="application/fhir+json")


class IntakeLinkViewSet(
    IdempotentCreateMixin,
    ClinicScopedMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Links patients open to fill their intake. Front desk creates, revokes and re-sends them."""

    allowed_roles = ALL_ROLES
    api_scope = "intake"
    serializer_class = IntakeLinkSerializer
    queryset = IntakeLink.objects.select_related("questionnaire", "submission")
    filterset_fields = ["patient", "appointment", "status"]

    def perform_create(self, serializer):
        data = serializer.validated_data
        user = self.request.user if self.request.user.is_authenticated else None
        serializer.instance = intake_links_create(
            patient=data["patient"], appointment=data.get("appointment"), intake=data.get("intake"), created_by=user,
            send=data["send"],
        )[0]  # fmt: skip

    def _user(self):
        return self.request.user if self.request.user.is_authenticated else None

    @extend_schema(request=None, responses=IntakeLinkSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        link = intake_link_revoke(link=self.get_object(), by=self._user())
        return Response(self.get_serializer(link).data)

    @extend_schema(request=None, responses=IntakeLinkSerializer)
    @action(detail=True, methods=["post"])
    def resend(self, request, pk=None):
        link = intake_link_resend(link=self.get_object(), by=self._user())
        return Response(self.get_serializer(link).data)


class SubmissionViewSet(ClinicScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Submitted intakes: clinical content, so therapists and owners only; every read is audited."""

    allowed_roles = CLINICAL_ROLES
    api_scope = "intake"
    serializer_class = SubmissionSerializer
    queryset = IntakeSubmission.objects.select_related("questionnaire", "patient").prefetch_related("flags")
    filterset_fields = ["patient"]

    def get_queryset(self):
        submissions = super().get_queryset()
        return scope_clinical_list(submissions, self.request) if self.action == "list" else submissions

    def get_object(self):
        submission = super().get_object()
        require_clinical_access(self.request, submission.patient)
        return submission

    def list(self, request, *args, **kwargs):
        # Filtering validates ?patient= first: an id outside the clinic is a 400 and nothing is audited.
        response = super().list(request, *args, **kwargs)
        ids = [row["id"] for row in response.data["results"]]
        patient = getattr(self, "filter_values", {}).get("patient")  # a Patient of this clinic, or None
        audit_record(
            action=AuditAction.LIST, clinic=request.clinic, request=request, via="api",
            patient_id=patient.pk if patient else None,
            extra={"object_type": "intake.intakesubmission", "ids": ids},
        )  # fmt: skip
        return response

    def retrieve(self, request, *args, **kwargs):
        submission = self.get_object()
        audit_record(action=AuditAction.VIEW, obj=submission, request=request, via="api")
        return Response(self.get_serializer(submission).data)

    @extend_schema(responses={(200, "application/fhir+json"): OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def fhir(self, request, pk=None):
        submission = self.get_object()
        audit_record(action=AuditAction.EXPORT, obj=submission, request=request, via="fhir")
        return Response(submission_to_fhir(submission), content_type="application/fhir+json")


class FlagFilterSet(filters.FilterSet):
    active = filters.BooleanFilter(field_name="cleared_at", lookup_expr="isnull")
    acknowledged = filters.BooleanFilter(field_name="acknowledged_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = PatientFlag
        fields = ["patient", "severity", "rule_code"]


class FlagViewSet(ClinicScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Screening flags. Everyone sees them (a receptionist must know to warn the therapist);
    only clinicians acknowledge them."""

    allowed_roles = ALL_ROLES
    write_roles = CLINICAL_ROLES
    api_scope = "intake"
    serializer_class = FlagSerializer
    queryset = PatientFlag.objects.select_related("acknowledged_by", "cleared_by")
    filterset_class = FlagFilterSet

    def get_queryset(self):
        # Clinical fields only for callers who may read the patient's record (intake.flag_detail).
        return with_flag_detail(super().get_queryset(), self.request)

    def filter_queryset(self, queryset):
        # The rule code names the suspected condition: filtering by it is reading it.
        if "rule_code" in self.request.query_params and flag_detail_rule(self.request) is False:
            raise PermissionDenied("Filtering flags by rule is for clinical staff and keys with clinical:read.")
        return super().filter_queryset(queryset)

    @extend_schema(request=None, responses=FlagSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        flag = self.get_object()  # another clinic's flag is a 404 whoever asks
        if not request.user.is_authenticated:
            # An acknowledgement records which clinician read the flag; a key is not a clinician.
            raise PermissionDenied("Flags are acknowledged by a signed-in clinician, not an API key.")
        flag = flag_acknowledge(flag=flag, by=request.user)
        return Response(self.get_serializer(flag).data, status=status.HTTP_200_OK)

    @extend_schema(request=FlagClearSerializer, responses=FlagSerializer)
    @action(detail=True, methods=["post"])
    def clear(self, request, pk=None):
        flag = self.get_object()
        if not request.user.is_authenticated:
            raise PermissionDenied("Flags are cleared by a signed-in clinician, not an API key.")
        body = FlagClearSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        flag = flag_clear(flag=flag, by=request.user, reason=body.validated_data["reason"])
        return Response(self.get_serializer(flag).data)


def _active_flags_prefetch(request):
    # Each flag knows whether the caller may read its clinical fields (intake.flag_detail).
    flags = with_flag_detail(PatientFlag.objects.active(), request)
    return Prefetch("flags", queryset=flags, to_attr="active_flag_list")


def _with_active_flags(queryset, value: bool):
    flagged = PatientFlag.objects.active().values("patient_id")
    return queryset.filter(pk__in=flagged) if value else queryset.exclude(pk__in=flagged)


# The patient's active flags on every patient the API reads (IntakeConfig.ready registers it).
ACTIVE_FLAGS = PatientExtra(
    name="active_flags",
    field=lambda: FlagSummarySerializer(many=True, read_only=True, source="active_flag_list"),
    prefetch=_active_flags_prefetch,
    filter_name="has_active_flags",
    filter=_with_active_flags,
)
