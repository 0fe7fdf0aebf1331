from rest_framework import serializers

from clinic.models import BreakGlassAccess, Location, Practitioner, Room, Service


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


class BreakGlassAccessSerializer(serializers.ModelSerializer):
    class Meta:
        model = BreakGlassAccess
        fields = ["id", "patient", "user", "reason", "opened_at", "expires_at", "reviewed_at", "reviewed_by"]
        read_only_fields = ["id", "user", "opened_at", "expires_at", "reviewed_at", "reviewed_by"]
        extra_kwargs = {"reason": {"help_text": "Why this record is needed now (at least 15 characters)."}}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None and getattr(request, "clinic", None) is not None:
            from patients.models import Patient

            # A patient of another clinic is "not found", like everywhere else.
            self.fields["patient"].queryset = Patient.objects.filter(clinic=request.clinic)
