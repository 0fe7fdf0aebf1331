from phonenumber_field.phonenumber import PhoneNumber
from phonenumber_field.serializerfields import PhoneNumberField
from rest_framework import serializers

from clinic.api.conventions import StrictModelSerializer
from intake.flag_detail import flag_redact, flag_shows_detail
from intake.models import PatientFlag
from patients.models import Patient
from treatments.models import Side


class FlagSummarySerializer(serializers.ModelSerializer):
    """A flag as shown on the patient: enough to warn, with the detail in /patient-flags/."""

    acknowledged = serializers.SerializerMethodField()
    side = serializers.ChoiceField(choices=Side.choices, allow_blank=True, read_only=True)

    class Meta:
        model = PatientFlag
        fields = ["id", "rule_code", "severity", "title", "region", "side", "acknowledged", "created_at"]
        read_only_fields = fields

    def get_acknowledged(self, flag) -> bool:
        return flag.acknowledged_at is not None

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if flag_shows_detail(instance, self.context.get("request")):
            return data
        return flag_redact(data, instance.severity)  # no clinical detail (intake.flag_detail)


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
    active_flags = FlagSummarySerializer(many=True, read_only=True, source="active_flag_list")
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
            "is_archived", "archived_at", "merged_into", "active_flags", "allow_duplicate",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = [
            "id", "email_consent_at", "email_consent_source", "sms_consent_at", "sms_consent_source",
            "is_archived", "archived_at", "merged_into", "created_at", "updated_at",
        ]  # fmt: skip

    def to_representation(self, instance):
        if not hasattr(instance, "active_flag_list"):
            instance.active_flag_list = list(instance.flags.active())
        data = super().to_representation(instance)
        for name in ("mobile_phone", "emergency_contact_phone"):
            data[name] = data[name] or ""
        return data
