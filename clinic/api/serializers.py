from django.conf import settings
from rest_framework import serializers

from clinic.api.authentication import ALL_SCOPES
from clinic.api.inputs import StrictModelSerializer, StrictSerializer
from clinic.csv_import import DATE_FORMAT_HELP, date_format_parse
from clinic.models import (
    ApiKey,
    AuditEvent,
    BreakGlassAccess,
    ExportFormat,
    ExportJob,
    ImportJob,
    Location,
    Practitioner,
    Room,
    Service,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)
from clinic.webhooks.outbound import url_refusal


class LocationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Location
        fields = [
            "id", "name", "address_line1", "address_line2", "city", "region", "postal_code",
            "country", "phone", "is_active", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at", "updated_at"]


class ServiceSerializer(serializers.ModelSerializer):
    modality = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = Service
        fields = [
            "id", "name", "modality", "description", "duration_minutes", "buffer_minutes", "price",
            "requires_room", "is_active", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class RoomSerializer(serializers.ModelSerializer):
    services = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Room
        fields = ["id", "name", "location", "services", "is_active", "created_at", "updated_at"]
        read_only_fields = fields


class PractitionerSerializer(serializers.ModelSerializer):
    modalities = serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)
    services = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Practitioner
        fields = [
            "id", "display_name", "modalities", "services", "registration_number", "registration_body",
            "is_active", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class BreakGlassAccessSerializer(StrictModelSerializer):
    class Meta:
        model = BreakGlassAccess
        fields = ["id", "patient", "user", "reason", "opened_at", "expires_at", "reviewed_at", "reviewed_by"]
        read_only_fields = ["id", "user", "opened_at", "expires_at", "reviewed_at", "reviewed_by"]
        extra_kwargs = {"reason": {"help_text": "Why this record is needed now (at least 15 characters)."}}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None and getattr(request, "clinic", None) is not None:
            # A patient of another clinic is "not found", like everywhere else.
            self.fields["patient"].queryset = self.fields["patient"].queryset.filter(clinic=request.clinic)


class ApiKeySerializer(serializers.ModelSerializer):
    """An API key as owners see it: never the key itself nor its digest."""

    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id", "name", "prefix", "scopes", "is_active", "created_by", "created_at", "updated_at",
            "last_used_at", "revoked_at",
        ]  # fmt: skip
        read_only_fields = fields


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The key itself. Shown in this response only; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiKeyCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=120)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=ALL_SCOPES), min_length=1)


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id", "occurred_at", "actor", "actor_label", "action", "object_type", "object_id", "patient_id",
            "via", "ip_address", "user_agent", "request_id", "reason", "extra", "prev_hash", "hash",
        ]  # fmt: skip
        read_only_fields = fields


class WebhookEndpointSerializer(StrictModelSerializer):
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEventType.choices), min_length=1, max_length=20
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id", "url", "description", "events", "is_active", "failing_since", "disabled_at", "disabled_reason",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "failing_since", "disabled_at", "disabled_reason", "created_at", "updated_at"]

    def validate_url(self, value: str) -> str:
        if not settings.WEBHOOK_ALLOW_HTTP and not value.startswith("https://"):
            raise serializers.ValidationError("Webhook URLs must use https.")
        refusal = url_refusal(value)
        if refusal:
            raise serializers.ValidationError(refusal)
        return value


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="Signing secret: shown in this response only. Verify signatures with it."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.UUIDField(source="event.event_id", read_only=True)
    event_type = serializers.CharField(source="event.type", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "endpoint", "event_id", "event_type", "status", "attempts", "next_attempt_at", "last_attempt_at",
            "response_status", "last_error", "delivered_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class ImportJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportJob
        fields = [
            "id", "kind", "status", "dry_run", "date_format", "mapping", "rows", "created_count", "errors", "detail",
            "created_at", "updated_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields


class ImportJobCreateSerializer(StrictSerializer):
    csv = serializers.CharField(help_text="The CSV file's text, header row first.", trim_whitespace=False)
    mapping = serializers.DictField(
        child=serializers.CharField(max_length=200), required=False, default=dict,
        help_text="Our field -> your column header, for columns not named like ours.",
    )  # fmt: skip
    dry_run = serializers.BooleanField(default=False)
    date_format = serializers.CharField(
        max_length=40, required=False, default="", allow_blank=True,
        help_text=DATE_FORMAT_HELP + " Without it a date that is not ISO 8601 is a row error: "
        "the day/month order is never guessed.",
    )  # fmt: skip

    def validate_date_format(self, value: str) -> str:
        try:
            return date_format_parse(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class ExportJobSerializer(serializers.ModelSerializer):
    download = serializers.SerializerMethodField(help_text="Where to fetch the file once it is ready (one download).")

    class Meta:
        model = ExportJob
        fields = [
            "id", "kind", "format", "status", "rows", "detail", "created_at", "finished_at", "expires_at",
            "downloaded_at", "download",
        ]  # fmt: skip
        read_only_fields = fields

    def get_download(self, job) -> str | None:
        ready = job.status == "succeeded" and job.downloaded_at is None
        return f"/api/v1/exports/{job.pk}/download/" if ready else None


class ExportJobCreateSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=[], help_text="What to export.")
    format = serializers.ChoiceField(choices=ExportFormat.choices, default=ExportFormat.CSV)

    def __init__(self, *args, kinds: list[str] | tuple[str, ...] = ("patients", "appointments"), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = list(kinds)
