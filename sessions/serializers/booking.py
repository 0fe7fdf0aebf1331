"""Booking API serializers. Times in: ISO 8601 with an offset (naive is a 400). Times out:
the clinic's zone (the views activate it). Ids of another clinic read as "Not found."."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from rest_framework import serializers

from clinic.api.inputs import StrictModelSerializer, StrictSerializer, SupportedDateTimeField
from clinic.models import Location, Practitioner, Room, Service
from patients.models import Patient
from sessions.models import (
    Appointment,
    AppointmentChange,
    AppointmentStatus,
    CalendarFeed,
    CancelledBy,
    ConfirmedVia,
    WaitlistEntry,
    WaitlistOffer,
)

MAX_SLOT_RANGE = dt.timedelta(days=31)


class AwareDateTimeField(SupportedDateTimeField):
    default_error_messages = {"naive": "Give the time with its UTC offset (e.g. 2027-03-01T10:00:00-05:00)."}

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)


class ClinicRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary key limited to the request's clinic: another clinic's id is "Not found."."""

    default_error_messages = {
        "does_not_exist": "Not found.",
        "incorrect_type": "Not found.",
    }

    def __init__(self, model, **kwargs):
        self.model = model
        super().__init__(queryset=model.objects.all(), **kwargs)

    def get_queryset(self):
        return self.model.objects.filter(clinic=self.context["request"].clinic)


class AppointmentSerializer(serializers.ModelSerializer):
    start = AwareDateTimeField(read_only=True)
    end = AwareDateTimeField(read_only=True)
    cancelled_by_party = serializers.ChoiceField(choices=CancelledBy.choices, allow_blank=True, read_only=True)
    confirmed_at = AwareDateTimeField(read_only=True, allow_null=True)
    confirmed_via = serializers.ChoiceField(choices=ConfirmedVia.choices, allow_blank=True, read_only=True)

    class Meta:
        model = Appointment
        fields = [
            "id", "patient", "practitioner", "service", "room", "location", "start", "end", "status",
            "confirmed_at", "confirmed_via",
            "notes", "series", "cancelled_at", "cancelled_by_party", "cancellation_reason",
            "late_cancellation", "hours_override_reason", "sequence", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class _HoursOverride(StrictSerializer):
    hours_override = serializers.BooleanField(default=False)
    hours_override_reason = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class AppointmentBookSerializer(_HoursOverride):
    patient = ClinicRelatedField(Patient)
    practitioner = ClinicRelatedField(Practitioner)
    service = ClinicRelatedField(Service)
    room = ClinicRelatedField(Room, required=False, allow_null=True, default=None)
    start = AwareDateTimeField()
    notes = serializers.CharField(required=False, default="", allow_blank=True, max_length=2000)


class AppointmentSeriesSerializer(AppointmentBookSerializer):
    occurrences = serializers.IntegerField(min_value=2, max_value=52)
    interval_days = serializers.IntegerField(min_value=1, max_value=90, default=7)
    hours_override = None
    hours_override_reason = None


class AppointmentRescheduleSerializer(_HoursOverride):
    start = AwareDateTimeField()
    practitioner = ClinicRelatedField(Practitioner, required=False, allow_null=True, default=None)
    room = ClinicRelatedField(Room, required=False, allow_null=True, default=None)
    reason = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class AppointmentCancelSerializer(StrictSerializer):
    party = serializers.ChoiceField(choices=CancelledBy.choices, default=CancelledBy.CLINIC)
    reason = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class AppointmentChangeSerializer(serializers.ModelSerializer):
    by = serializers.CharField(source="by.username", default=None, read_only=True, allow_null=True)
    old_status = serializers.ChoiceField(choices=AppointmentStatus.choices, allow_blank=True, read_only=True)
    new_status = serializers.ChoiceField(choices=AppointmentStatus.choices, allow_blank=True, read_only=True)

    class Meta:
        model = AppointmentChange
        fields = [
            "kind", "at", "by", "old_start", "new_start", "old_practitioner", "new_practitioner",
            "old_room", "new_room", "old_status", "new_status", "reason",
        ]  # fmt: skip
        read_only_fields = fields


class SlotQuerySerializer(StrictSerializer):
    service = ClinicRelatedField(Service)
    practitioner = ClinicRelatedField(Practitioner, required=False, allow_null=True, default=None)
    location = ClinicRelatedField(Location, required=False, allow_null=True, default=None)
    start = AwareDateTimeField()
    end = AwareDateTimeField()

    def validate(self, attrs):
        if attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": "The end must be after the start."})
        if attrs["end"] - attrs["start"] > MAX_SLOT_RANGE:
            raise serializers.ValidationError({"end": f"Ask for at most {MAX_SLOT_RANGE.days} days at a time."})
        return attrs


class SlotSerializer(serializers.Serializer):
    practitioner = serializers.IntegerField()
    location = serializers.IntegerField()
    room = serializers.IntegerField(allow_null=True)
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class SlotListSerializer(serializers.Serializer):
    service = serializers.IntegerField()
    count = serializers.IntegerField()
    results = SlotSerializer(many=True)


class CalendarFeedSerializer(serializers.ModelSerializer):
    class Meta:
        model = CalendarFeed
        fields = ["id", "practitioner", "prefix", "created_at", "revoked_at"]
        read_only_fields = fields


class CalendarFeedCreateSerializer(StrictSerializer):
    practitioner = ClinicRelatedField(Practitioner)


class WaitlistEntrySerializer(StrictModelSerializer):
    patient = ClinicRelatedField(Patient)
    service = ClinicRelatedField(Service)
    practitioner = ClinicRelatedField(Practitioner, required=False, allow_null=True, default=None)
    window_start = AwareDateTimeField()
    window_end = AwareDateTimeField()

    class Meta:
        model = WaitlistEntry
        fields = [
            "id", "patient", "service", "practitioner", "window_start", "window_end", "status",
            "appointment", "notes", "created_at",
        ]  # fmt: skip
        read_only_fields = ["id", "status", "appointment", "created_at"]

    def validate(self, attrs):
        if attrs["window_end"] <= attrs["window_start"]:
            raise serializers.ValidationError({"window_end": "The end must be after the start."})
        return attrs


class WaitlistOfferSerializer(serializers.ModelSerializer):
    start = AwareDateTimeField(read_only=True)

    class Meta:
        model = WaitlistOffer
        fields = ["id", "entry", "practitioner", "room", "start", "status", "expires_at", "appointment", "created_at"]
        read_only_fields = fields
