"""Patient rights over the API: `GET /patients/{id}/export/?format=fhir|html` and
`POST /patients/{id}/erase/`. The services live in patients/privacy.py."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from clinic.api.clinical import ClinicalAccessMixin, require_clinical_access
from clinic.api.inputs import StrictSerializer
from clinic.security.roles import CLINICAL_ROLES, Role
from patients.models import Patient
from patients.privacy import patient_erase, patient_export


def _patient(request, pk: int) -> Patient:
    patient = Patient.objects.filter(clinic=request.clinic, pk=pk).select_related("clinic").first()
    if patient is None:
        raise NotFound()
    return patient


class ExportQuerySerializer(StrictSerializer):
    format = serializers.ChoiceField(choices=["fhir", "html"], default="fhir")


class PatientExportView(ClinicalAccessMixin, APIView):
    """Everything held about one patient: a FHIR R4 `collection` Bundle, or a readable HTML page.

    Owners, and therapists who may open the patient's record (usual practitioner or
    emergency access); API keys need `clinical:read`. Every export is audited.
    """

    allowed_roles = CLINICAL_ROLES
    isolation_model = Patient

    @extend_schema(
        parameters=[ExportQuerySerializer],
        responses={
            (200, "application/fhir+json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="format=fhir: a FHIR Bundle"
            ),
            (200, "text/html"): OpenApiResponse(OpenApiTypes.STR, description="format=html: a readable page"),
            403: OpenApiResponse(description="Break-glass needed"),
            404: OpenApiResponse(description="No such patient in this clinic"),
        },
    )
    def get(self, request, pk: int):
        query = ExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        patient = _patient(request, pk)
        require_clinical_access(request, patient)
        export_format = query.validated_data["format"]
        result = patient_export(patient=patient, export_format=export_format, request=request)
        if export_format == "html":
            return HttpResponse(result, content_type="text/html; charset=utf-8")
        return Response(result, content_type="application/fhir+json")


class EraseSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=500, help_text="The request this erasure answers (no personal data).")


class ErasedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    erased_at = serializers.DateTimeField()
    erased_by = serializers.CharField()


class PatientEraseView(APIView):
    """Erase a patient: identity and contact data anonymised, clinical records kept until
    retention removes them. Owners only, signed in (not an API key); audited."""

    allowed_roles = frozenset({Role.OWNER})
    api_scope = "patients"
    api_keys_allowed = False
    isolation_model = Patient

    @extend_schema(request=EraseSerializer, responses={200: ErasedSerializer, 400: None, 404: None})
    def post(self, request, pk: int):
        # Find the patient first: another clinic's patient is 404 whatever the body says.
        target = _patient(request, pk)
        body = EraseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        patient = patient_erase(patient=target, by=request.user, reason=body.validated_data["reason"], request=request)
        return Response(
            ErasedSerializer(
                {"id": patient.pk, "erased_at": patient.erased_at, "erased_by": request.user.get_username()}
            ).data
        )
