"""FHIR R4 Patient: demographics and contact details (no clinical content)."""

from __future__ import annotations

from django_filters import rest_framework as filters

from clinic.api.inputs import SupportedDateFilter
from clinic.fhir.base import FhirDateFilter, FhirViewSet, fhir_meta, fhir_schema
from patients.models import Patient


def patient_to_fhir(patient: Patient) -> dict:
    names = [{"use": "official", "family": patient.family_name, "given": [patient.given_name]}]
    if patient.preferred_name:
        names.append({"use": "usual", "given": [patient.preferred_name]})
    resource = {
        "resourceType": "Patient",
        "id": str(patient.pk),
        "meta": fhir_meta(patient),
        "active": not patient.is_archived,
        "name": names,
    }
    telecom = []
    if patient.email:
        telecom.append({"system": "email", "value": patient.email})
    if patient.mobile_phone:
        telecom.append({"system": "phone", "value": str(patient.mobile_phone), "use": "mobile"})
    if telecom:
        resource["telecom"] = telecom
    if patient.gender:
        resource["gender"] = patient.gender
    if patient.birth_date:
        resource["birthDate"] = patient.birth_date.isoformat()
    address = {}
    lines = [line for line in (patient.address_line1, patient.address_line2) if line]
    if lines:
        address["line"] = lines
    for key, value in (
        ("city", patient.city),
        ("state", patient.region),
        ("postalCode", patient.postal_code),
        ("country", patient.country),
    ):
        if value:
            address[key] = value
    if address:
        resource["address"] = [address]
    return resource


class PatientSearch(filters.FilterSet):
    family = filters.CharFilter(field_name="family_name", lookup_expr="istartswith")
    given = filters.CharFilter(field_name="given_name", lookup_expr="istartswith")
    birthdate = SupportedDateFilter(field_name="birth_date")
    email = filters.CharFilter(field_name="email", lookup_expr="iexact")
    _lastUpdated = FhirDateFilter(field_name="updated_at")  # noqa: N815 - FHIR parameter name

    class Meta:
        model = Patient
        fields: list[str] = []


@fhir_schema("Patient")
class FhirPatientViewSet(FhirViewSet):
    """FHIR R4 Patient: demographics and contact details (no clinical content)."""

    api_scope = "patients"
    queryset = Patient.objects.all()
    filterset_class = PatientSearch
    to_fhir = staticmethod(patient_to_fhir)
