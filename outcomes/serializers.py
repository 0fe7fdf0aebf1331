from rest_framework import serializers

from clinic.api.inputs import StrictModelSerializer, StrictSerializer, SupportedDateField
from outcomes.measures import MEASURE_CHOICES
from outcomes.models import OutcomeLink, OutcomeResponse
from patients.models import Patient


class ClinicPatientField(serializers.PrimaryKeyRelatedField):
    """A patient of the caller's clinic; another clinic's id reads as "does not exist"."""

    def __init__(self, **kwargs):
        kwargs.setdefault("queryset", Patient.objects.all())
        super().__init__(**kwargs)

    def get_queryset(self):
        return super().get_queryset().filter(clinic=self.context["request"].clinic)


class OutcomeLinkSerializer(StrictModelSerializer):
    patient = ClinicPatientField()
    measure = serializers.ChoiceField(choices=MEASURE_CHOICES)
    send = serializers.BooleanField(
        write_only=True, default=False, help_text="Send the link to the patient now (email or SMS, by consent)."
    )

    class Meta:
        model = OutcomeLink
        fields = ["id", "url", "patient", "measure", "course", "reason", "status", "send", "expires_at",
                  "submitted_at", "created_at"]  # fmt: skip
        read_only_fields = ["id", "url", "course", "reason", "status", "expires_at", "submitted_at", "created_at"]


class OutcomeResponseSerializer(serializers.ModelSerializer):
    mcid = serializers.SerializerMethodField()
    higher_is_better = serializers.SerializerMethodField()

    class Meta:
        model = OutcomeResponse
        fields = ["id", "patient", "course", "measure", "measure_version", "status", "score", "missing", "answers",
                  "recorded_on", "recorded_at", "link", "entered_by", "mcid", "higher_is_better"]  # fmt: skip
        read_only_fields = fields

    def get_mcid(self, response) -> str:
        return str(response.definition.mcid)

    def get_higher_is_better(self, response) -> bool:
        return response.definition.higher_is_better


class OutcomeRecordSerializer(StrictSerializer):
    """A paper form typed in by staff."""

    patient = ClinicPatientField()
    measure = serializers.ChoiceField(choices=MEASURE_CHOICES)
    recorded_on = SupportedDateField()
    answers = serializers.JSONField(
        help_text='Item code -> value (blank: null), e.g. {"q1": 3, ...}; PSFS: {"activities": [{"name", "rating"}]}.'
    )
