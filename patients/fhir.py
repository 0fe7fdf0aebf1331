"""FHIR R4 Patient: demographics and contact details (no clinical content); search by the
spec's common parameters, create (also conditional, `If-None-Exist`) and update through the
same services as the REST API (`patient_create`, `patient_update`, archive/unarchive)."""

from __future__ import annotations

import datetime as dt

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Q
from django_filters import rest_framework as filters
from rest_framework import exceptions

from clinic.api.conventions import Conflict
from clinic.api.inputs import DATE_RANGE_ERROR, in_supported_range
from clinic.fhir.base import FhirDateFilter, FhirViewSet, fhir_meta, fhir_schema
from clinic.fhir.writes import FhirWriteMixin, django_errors_as_fhir
from patients.models import Gender, Patient
from patients.services import (
    DuplicatePatientError,
    patient_archive,
    patient_create,
    patient_unarchive,
    patient_update,
)

# The patient's number in this clinic system (its FHIR id), as an identifier clients can search.
IDENTIFIER_SYSTEM = f"{settings.PUBLIC_BASE_URL}/fhir/R4/Patient"
MEDICAL_RECORD = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}


def patient_to_fhir(patient: Patient) -> dict:
    names = [{"use": "official", "family": patient.family_name, "given": [patient.given_name]}]
    if patient.preferred_name:
        names.append({"use": "usual", "given": [patient.preferred_name]})
    resource = {
        "resourceType": "Patient",
        "id": str(patient.pk),
        "meta": fhir_meta(patient),
        "identifier": [{"use": "usual", "type": MEDICAL_RECORD, "system": IDENTIFIER_SYSTEM, "value": str(patient.pk)}],
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
    for key, value in ADDRESS_PARTS:
        if getattr(patient, value):
            address[key] = getattr(patient, value)
    if address:
        resource["address"] = [address]
    return resource


ADDRESS_PARTS = (("city", "city"), ("state", "region"), ("postalCode", "postal_code"), ("country", "country"))


# --- search ---------------------------------------------------------------------------------


def _words(value: str) -> list[str]:
    return [word for word in value.replace(",", " ").split() if word]


class PatientSearch(filters.FilterSet):
    """The spec's Patient search parameters (string: starts with, any case; token: exact)."""

    name = filters.CharFilter(method="filter_name", help_text="Start of any part of a name; every word must match.")
    family = filters.CharFilter(field_name="family_name", lookup_expr="istartswith")
    given = filters.CharFilter(field_name="given_name", lookup_expr="istartswith")
    birthdate = FhirDateFilter(field_name="birth_date", date_only=True)
    identifier = filters.CharFilter(method="filter_identifier", help_text=f"`{IDENTIFIER_SYSTEM}|<id>` or `<id>`.")
    phone = filters.CharFilter(method="filter_phone", help_text="A phone number; matched in E.164.")
    email = filters.CharFilter(field_name="email", lookup_expr="iexact")
    _lastUpdated = FhirDateFilter(field_name="updated_at")  # noqa: N815 - FHIR parameter name

    FHIR_TYPES = {"identifier": "token", "phone": "token", "email": "token"}  # for the CapabilityStatement

    class Meta:
        model = Patient
        fields: list[str] = []

    def filter_name(self, queryset, name, value):
        for word in _words(value):
            queryset = queryset.filter(
                Q(family_name__istartswith=word) | Q(given_name__istartswith=word) | Q(preferred_name__istartswith=word)
            )
        return queryset

    def filter_identifier(self, queryset, name, value):
        system, _, code = value.rpartition("|")
        if (system and system != IDENTIFIER_SYSTEM) or not (code.isascii() and code.isdigit()) or len(code) > 18:
            return queryset.none()  # not one of our identifiers: no patient has it
        return queryset.filter(pk=int(code))

    def filter_phone(self, queryset, name, value):
        try:
            number = phonenumbers.parse(value, settings.PHONENUMBER_DEFAULT_REGION)
        except phonenumbers.NumberParseException:
            return queryset.none()
        if not phonenumbers.is_possible_number(number):
            return queryset.none()
        return queryset.filter(mobile_phone=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


# --- writes ---------------------------------------------------------------------------------

# Where each stored field sits in the FHIR resource (for the field errors of the services).
FIELD_EXPRESSIONS = {
    "family_name": "Patient.name[0].family",
    "given_name": "Patient.name[0].given[0]",
    "preferred_name": "Patient.name[1].given[0]",
    "birth_date": "Patient.birthDate",
    "gender": "Patient.gender",
    "email": "Patient.telecom",
    "mobile_phone": "Patient.telecom",
    "address_line1": "Patient.address[0].line[0]",
    "address_line2": "Patient.address[0].line[1]",
    "city": "Patient.address[0].city",
    "region": "Patient.address[0].state",
    "postal_code": "Patient.address[0].postalCode",
    "country": "Patient.address[0].country",
    "is_archived": "Patient.active",
}


def _one(values: list[dict], *, use: str) -> dict | None:
    return next((value for value in values if value.get("use") == use), None)


def _birth_date(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:  # FHIR allows 1984 or 1984-05; a record needs the day
        raise exceptions.ValidationError(
            {"Patient.birthDate": ["Give the full date of birth, like 1984-05-02."]}
        ) from None
    if not in_supported_range(day):
        raise exceptions.ValidationError({"Patient.birthDate": [DATE_RANGE_ERROR]})
    return day


def patient_data_from_fhir(resource: dict) -> dict:
    """The stored fields a FHIR Patient sets. An update replaces the resource, so every field
    it maps is set (blank when absent); fields FHIR does not carry (consents, the emergency
    contact, the preferred channel) are left as they are."""
    names = resource.get("name") or []
    official = _one(names, use="official") or next((n for n in names if n.get("use") != "usual"), None)
    if official is None or not official.get("family") or not official.get("given"):
        raise exceptions.ValidationError({"Patient.name": ["Give an official name with a family and a given name."]})
    usual = _one(names, use="usual")
    data = {
        "family_name": official["family"],
        "given_name": " ".join(official["given"]),
        "preferred_name": " ".join((usual or {}).get("given") or []),
        "birth_date": _birth_date(resource.get("birthDate")),
        "gender": resource.get("gender") or Gender.UNKNOWN,
        "email": "",
        "mobile_phone": "",
    }
    if data["gender"] not in Gender.values:
        raise exceptions.ValidationError({"Patient.gender": [f"Use one of {', '.join(Gender.values)}."]})
    for index, contact in enumerate(resource.get("telecom") or []):
        system, value = contact.get("system"), contact.get("value") or ""
        field = {"email": "email", "phone": "mobile_phone", "sms": "mobile_phone"}.get(system)
        if field is None or data[field]:
            raise exceptions.ValidationError(
                {f"Patient.telecom[{index}]": ["Give at most one email and one (mobile) phone."]}
            )
        data[field] = value
    addresses = resource.get("address") or []
    if len(addresses) > 1:
        raise exceptions.ValidationError({"Patient.address[1]": ["Give at most one address."]})
    address = addresses[0] if addresses else {}
    lines = address.get("line") or []
    if len(lines) > 2:
        raise exceptions.ValidationError({"Patient.address[0].line[2]": ["Give at most two address lines."]})
    data["address_line1"], data["address_line2"] = ([*lines, "", ""])[:2]
    for key, field in ADDRESS_PARTS:
        data[field] = address.get(key) or ""
    return data


@fhir_schema("Patient", writes=True)
class FhirPatientViewSet(FhirWriteMixin, FhirViewSet):
    """FHIR R4 Patient: demographics and contact details (no clinical content)."""

    api_scope = "patients"
    resource_type = "Patient"
    queryset = Patient.objects.all()
    filterset_class = PatientSearch
    to_fhir = staticmethod(patient_to_fhir)

    def fhir_create(self, resource: dict) -> Patient:
        data = patient_data_from_fhir(resource)
        try:
            return patient_create(clinic=self.request.clinic, data=data, source="fhir")
        except DuplicatePatientError as exc:
            found = ", ".join(f"Patient/{match.pk}" for match in exc.matches)
            raise Conflict(
                f"A patient with the same name and birth date, email or phone already exists: {found}. "
                f"Use that record, or send If-None-Exist to create only when there is none."
            ) from exc
        except DjangoValidationError as exc:
            raise django_errors_as_fhir(exc, FIELD_EXPRESSIONS, "Patient") from exc

    @transaction.atomic  # archive or unarchive and the new details together, or nothing
    def fhir_update(self, patient: Patient, resource: dict) -> Patient:
        data = patient_data_from_fhir(resource)
        active = resource.get("active", True)
        try:
            if active and patient.is_archived:
                patient = patient_unarchive(patient=patient)
            patient = patient_update(patient=patient, data=data, source="fhir")
            if not active and not patient.is_archived:
                patient = patient_archive(patient=patient)
        except DjangoValidationError as exc:
            raise django_errors_as_fhir(exc, FIELD_EXPRESSIONS, "Patient") from exc
        return patient
