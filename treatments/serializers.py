from __future__ import annotations

from django.db.models import F
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from treatments.models import AcupuncturePoint, ArtProtocol, BodyRegion, Muscle, TriggerPoint, validate_point_code


@extend_schema_field(OpenApiTypes.STR)
class CatalogCodeField(serializers.RelatedField):
    """A catalog row by code, among the shared rows and the request clinic's additions.

    A clinic's own row wins over a shared row with the same code.
    """

    default_error_messages = {
        "unknown": "Unknown {name} code {value!r}.",
        "invalid": "Send the code as a string.",
    }

    def __init__(self, model, **kwargs):
        self.model = model
        kwargs.setdefault("queryset", model.objects.filter(is_active=True))
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        code = data.strip()
        if self.model is AcupuncturePoint:
            code = code.upper()
            try:
                validate_point_code(code)
            except Exception as error:  # a Django ValidationError with one clear message
                raise serializers.ValidationError(error.messages) from None
        clinic = self.context["request"].clinic
        row = (
            self.get_queryset().for_clinic(clinic).filter(code=code).order_by(F("clinic").asc(nulls_last=True)).first()
        )
        if row is None:
            self.fail("unknown", name=self.model._meta.verbose_name, value=code)
        return row

    def to_representation(self, value):
        return value.code


class BodyRegionSerializer(serializers.ModelSerializer):
    parent = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    clinic_specific = serializers.SerializerMethodField()

    class Meta:
        model = BodyRegion
        fields = ["id", "code", "name", "parent", "clinic_specific"]

    def get_clinic_specific(self, obj) -> bool:
        return obj.clinic_id is not None


class MuscleSerializer(BodyRegionSerializer):
    region = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = Muscle
        fields = ["id", "code", "name", "kind", "region", "description", "clinic_specific"]


class TriggerPointSerializer(BodyRegionSerializer):
    muscle = serializers.SlugRelatedField(slug_field="code", read_only=True)
    referral_regions = serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)

    class Meta:
        model = TriggerPoint
        fields = ["id", "code", "name", "muscle", "referral_regions", "referral_pattern", "clinic_specific"]


class ArtProtocolSerializer(BodyRegionSerializer):
    structure = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = ArtProtocol
        fields = ["id", "code", "name", "structure", "contact", "tension", "patient_movement", "clinic_specific"]


class AcupuncturePointSerializer(BodyRegionSerializer):
    region = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = AcupuncturePoint
        fields = [
            "id", "code", "name", "meridian", "region", "is_midline", "avoid_in_pregnancy", "cautions",
            "clinic_specific",
        ]  # fmt: skip
