"""FHIR R4 Practitioner: the clinic's therapists."""

from __future__ import annotations

from django_filters import rest_framework as filters

from clinic.fhir.base import FhirDateFilter, FhirViewSet, fhir_meta, fhir_schema
from clinic.models import Practitioner


def practitioner_to_fhir(practitioner: Practitioner) -> dict:
    resource = {"resourceType": "Practitioner", "id": str(practitioner.pk), "meta": fhir_meta(practitioner)}
    if practitioner.registration_number:
        identifier = {"value": practitioner.registration_number}
        if practitioner.registration_body:
            identifier["assigner"] = {"display": practitioner.registration_body}
        resource["identifier"] = [identifier]
    resource["active"] = practitioner.is_active
    resource["name"] = [{"text": practitioner.display_name}]
    return resource


class PractitionerSearch(filters.FilterSet):
    name = filters.CharFilter(field_name="display_name", lookup_expr="icontains")
    active = filters.BooleanFilter(field_name="is_active")
    _lastUpdated = FhirDateFilter(field_name="updated_at")  # noqa: N815

    class Meta:
        model = Practitioner
        fields: list[str] = []


@fhir_schema("Practitioner")
class FhirPractitionerViewSet(FhirViewSet):
    """FHIR R4 Practitioner: the clinic's therapists."""

    api_scope = "clinic"
    queryset = Practitioner.objects.all()
    filterset_class = PractitionerSearch
    to_fhir = staticmethod(practitioner_to_fhir)
