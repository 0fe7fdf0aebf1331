from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet, prefetch_related_objects
from phonenumber_field.phonenumber import PhoneNumber
from phonenumber_field.serializerfields import PhoneNumberField
from rest_framework import serializers
from rest_framework.request import Request

from clinic.api.inputs import StrictModelSerializer
from patients.models import Patient


@dataclass(frozen=True)
class PatientExtra:
    """Something an app above this one shows with every patient of the API, registered from its
    AppConfig.ready() through `patients.api.patient_extra_register` (this app never imports it).
    Intake registers the patient's active red flags.

    - `name` and `field()`: the key on the patient and its read-only serializer field, which
      reads the attribute `prefetch` fills;
    - `prefetch(request)`: a `Prefetch(..., to_attr=...)` that loads it for a page in one query;
    - `filter_name`, `filter(queryset, value)`: an optional boolean list filter.
    """

    name: str
    field: Callable[[], serializers.Field]
    prefetch: Callable[[Request | None], Prefetch]
    filter_name: str = ""
    filter: Callable[[QuerySet, bool], QuerySet] | None = None
    filter_help: str = ""


_EXTRAS: dict[str, PatientExtra] = {}


def patient_extra_add(extra: PatientExtra) -> None:
    _EXTRAS[extra.name] = extra


def patient_extras() -> list[PatientExtra]:
    return list(_EXTRAS.values())


class E164PhoneNumberField(PhoneNumberField):
    """In: validated against the numbering plan (phonenumber_field). Out: E.164.

    `str()` of a PhoneNumber checks the number against the numbering plan on every call, a
    seventh of the time of a page of 50 patients; numbers are checked when they come in and
    stored in E.164, and formatting one as E.164 is what `str()` does for a valid number.
    """

    def to_representation(self, value):
        if isinstance(value, PhoneNumber) and value.country_code and value.national_number:
            return value.as_e164
        return super().to_representation(value)


class PatientSerializer(StrictModelSerializer):
    mobile_phone = E164PhoneNumberField(required=False, allow_blank=True)
    emergency_contact_phone = E164PhoneNumberField(required=False, allow_blank=True)
    allow_duplicate = serializers.BooleanField(
        write_only=True, required=False, default=False,
        help_text="Create even though a patient with the same name and birth date, email or phone exists.",
    )  # fmt: skip

    class Meta:
        model = Patient
        fields = [
            "id", "given_name", "family_name", "preferred_name", "birth_date", "gender", "gender_text",
            "email", "mobile_phone", "address_line1", "address_line2", "city", "region", "postal_code", "country",
            "emergency_contact_name", "emergency_contact_phone", "preferred_channel",
            "email_consent", "email_consent_at", "email_consent_source",
            "sms_consent", "sms_consent_at", "sms_consent_source",
            "is_archived", "archived_at", "merged_into", "allow_duplicate",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = [
            "id", "email_consent_at", "email_consent_source", "sms_consent_at", "sms_consent_source",
            "is_archived", "archived_at", "merged_into", "created_at", "updated_at",
        ]  # fmt: skip

    def get_fields(self):
        fields = super().get_fields()
        for extra in patient_extras():
            fields[extra.name] = extra.field()
        return fields

    def to_representation(self, instance):
        # A patient not read through the viewset's queryset (a create, an update) loads them now.
        request = self.context.get("request")
        missing = [
            p for p in (extra.prefetch(request) for extra in patient_extras()) if not hasattr(instance, p.to_attr)
        ]
        if missing:
            prefetch_related_objects([instance], *missing)
        data = super().to_representation(instance)
        for name in ("mobile_phone", "emergency_contact_phone"):
            data[name] = data[name] or ""
        return data
