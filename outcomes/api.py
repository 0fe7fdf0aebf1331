"""Outcome API: links (front desk may send them), responses and scores (clinical)."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from clinic.api.clinical import ClinicalAccessMixin, require_clinical_access, scope_clinical_list
from clinic.api.conventions import ClinicScopedMixin
from clinic.models import AuditAction
from clinic.security.audit import audit_record
from clinic.security.roles import ALL_ROLES, CLINICAL_ROLES
from outcomes.fhir import response_bundle
from outcomes.measures import MEASURE_CHOICES
from outcomes.models import OutcomeLink, OutcomeResponse
from outcomes.serializers import OutcomeLinkSerializer, OutcomeRecordSerializer, OutcomeResponseSerializer
from outcomes.services import outcome_link_create, outcome_link_revoke, outcome_record


class OutcomeLinkViewSet(
    ClinicScopedMixin, mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):  # fmt: skip
    """Links patients open to fill a measure. Anyone at the desk may send one; no scores here."""

    allowed_roles = ALL_ROLES
    api_scope = "intake"
    serializer_class = OutcomeLinkSerializer
    queryset = OutcomeLink.objects.all()
    filterset_fields = ["patient", "measure", "status"]

    def perform_create(self, serializer):
        data = serializer.validated_data
        user = self.request.user if self.request.user.is_authenticated else None
        serializer.instance = outcome_link_create(
            patient=data["patient"], measure=data["measure"], created_by=user, send=data["send"]
        )

    @extend_schema(request=None, responses=OutcomeLinkSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        link = outcome_link_revoke(link=self.get_object())
        return Response(self.get_serializer(link).data)


class ResponseFilterSet(filters.FilterSet):
    measure = filters.ChoiceFilter(choices=MEASURE_CHOICES)

    class Meta:
        model = OutcomeResponse
        fields = ["patient", "measure", "status"]


class OutcomeResponseViewSet(
    ClinicalAccessMixin, ClinicScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Scored outcome measures: clinical content (owners, a therapist in a care relationship, or
    break-glass; `clinical` key scope). Every read is audited. POST types in a paper form."""

    allowed_roles = CLINICAL_ROLES
    serializer_class = OutcomeResponseSerializer
    queryset = OutcomeResponse.objects.all()
    filterset_class = ResponseFilterSet

    def get_queryset(self):
        rows = super().get_queryset()
        return scope_clinical_list(rows, self.request) if self.action == "list" else rows

    def get_object(self):
        response = super().get_object()
        require_clinical_access(self.request, response.patient)
        return response

    def list(self, request, *args, **kwargs):
        result = super().list(request, *args, **kwargs)
        patient = getattr(self, "filter_values", {}).get("patient")
        audit_record(
            action=AuditAction.LIST, clinic=request.clinic, request=request, via="api",
            patient_id=patient.pk if patient else None,
            extra={"object_type": "outcomes.outcomeresponse", "ids": [row["id"] for row in result.data["results"]]},
        )  # fmt: skip
        return result

    def retrieve(self, request, *args, **kwargs):
        response = self.get_object()
        audit_record(action=AuditAction.VIEW, obj=response, patient_id=response.patient_id, request=request, via="api")
        return Response(self.get_serializer(response).data)

    @extend_schema(request=OutcomeRecordSerializer, responses={201: OutcomeResponseSerializer})
    def create(self, request, *args, **kwargs):
        body = OutcomeRecordSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        require_clinical_access(request, data["patient"])
        user = request.user if request.user.is_authenticated else None
        response = outcome_record(
            patient=data["patient"], measure=data["measure"], answers=data["answers"],
            recorded_on=data["recorded_on"], by=user, request=request,
        )  # fmt: skip
        return Response(self.get_serializer(response).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "application/fhir+json"): OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def fhir(self, request, pk=None):
        response = self.get_object()
        audit_record(action=AuditAction.EXPORT, obj=response, patient_id=response.patient_id, request=request,
                     via="fhir")  # fmt: skip
        return Response(response_bundle(response), content_type="application/fhir+json")
