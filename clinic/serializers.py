from rest_framework import serializers

from clinic.api import StrictSerializer
from clinic.authentication import ALL_SCOPES
from clinic.models import ApiKey, AuditEvent, Location, Practitioner, Room, Service


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
