from rest_framework import serializers

from clinic.api.inputs import StrictModelSerializer, StrictSerializer
from intake.flag_detail import flag_redact, flag_shows_detail
from intake.models import IntakeChoice, IntakeLink, IntakeSubmission, PatientFlag, Questionnaire
from patients.models import Patient
from treatments.models import Side


class ClinicScopedPrimaryKey(serializers.PrimaryKeyRelatedField):
    """A key of a row in the caller's clinic; another clinic's id reads as "does not exist"."""

    def get_queryset(self):
        return super().get_queryset().filter(clinic=self.context["request"].clinic)


class QuestionnaireSerializer(serializers.ModelSerializer):
    class Meta:
        model = Questionnaire
        fields = ["id", "code", "version", "title", "status", "published_at", "definition"]
        read_only_fields = fields


class IntakeLinkSerializer(StrictModelSerializer):
    patient = ClinicScopedPrimaryKey(queryset=Patient.objects.all())
    # The appointment model through the link's own foreign key ("treatment_sessions.Appointment"):
    # intake sits below sessions and never imports it.
    appointment = ClinicScopedPrimaryKey(
        queryset=IntakeLink._meta.get_field("appointment").related_model.objects.all(), required=False, allow_null=True
    )
    questionnaire = serializers.PrimaryKeyRelatedField(read_only=True)
    questionnaire_version = serializers.IntegerField(source="questionnaire.version", read_only=True)
    send = serializers.BooleanField(
        write_only=True, default=False, help_text="Email the link to the patient now (needs an email address)."
    )
    intake = serializers.ChoiceField(
        choices=IntakeChoice.choices,
        write_only=True,
        required=False,
        help_text=(
            "Which intake to send; default: the clinic's setting. With `both` two links are made (and sent): "
            "the response is the first, and `companion` is the id of the other."
        ),
    )
    companion = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="The link of the other intake made and sent together with this one."
    )
    has_draft = serializers.SerializerMethodField()
    submission = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = IntakeLink
        fields = [
            "id", "url", "patient", "appointment", "intake", "questionnaire", "questionnaire_version", "companion",
            "status", "expires_at", "send", "send_count", "last_sent_at", "has_draft", "draft_saved_at",
            "submitted_at", "submission", "revoked_at", "created_at",
        ]  # fmt: skip
        read_only_fields = [
            "id", "url", "status", "expires_at", "send_count", "last_sent_at", "draft_saved_at", "submitted_at",
            "revoked_at", "created_at",
        ]  # fmt: skip

    def get_has_draft(self, link) -> bool:
        return bool(link.draft_answers)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if instance.is_expired:
            data["status"] = "expired"
        if not hasattr(instance, "submission"):
            data["submission"] = None
        return data


class FlagSerializer(serializers.ModelSerializer):
    """A flag; its clinical fields only for callers who may read the patient's record
    (`intake.flag_detail`), a neutral line for everyone else. `clinical=True` when the flag is
    part of content already access-checked (a submission)."""

    acknowledged_by = serializers.StringRelatedField(allow_null=True)
    cleared_by = serializers.StringRelatedField(allow_null=True)
    side = serializers.ChoiceField(choices=Side.choices, allow_blank=True, read_only=True)

    def __init__(self, *args, clinical: bool = False, **kwargs):
        self.clinical = clinical
        super().__init__(*args, **kwargs)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if self.clinical or flag_shows_detail(instance, self.context.get("request")):
            return data
        return flag_redact(data, instance.severity)

    class Meta:
        model = PatientFlag
        fields = [
            "id", "patient", "rule_code", "severity", "title", "reason", "region", "side", "submission",
            "created_at", "acknowledged_at", "acknowledged_by", "cleared_at", "cleared_by", "cleared_reason",
        ]  # fmt: skip
        read_only_fields = fields


class FlagClearSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=2000, help_text="Why the flag no longer applies (e.g. cleared by GP).")


class SubmissionSerializer(serializers.ModelSerializer):
    questionnaire = serializers.SerializerMethodField()
    summary = serializers.SerializerMethodField()
    flags = FlagSerializer(many=True, read_only=True, clinical=True)

    class Meta:
        model = IntakeSubmission
        fields = [
            "id", "patient", "link", "questionnaire", "submitted_at", "signature_name", "consented_at",
            "answers", "summary", "flags",
        ]  # fmt: skip
        read_only_fields = fields

    def get_questionnaire(self, submission) -> dict:
        q = submission.questionnaire
        return {"id": q.pk, "code": q.code, "version": q.version, "title": q.title}

    def get_summary(self, submission) -> list[dict]:
        return submission.questionnaire.form.summary(submission.answers)


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
