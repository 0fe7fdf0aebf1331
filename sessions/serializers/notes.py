from __future__ import annotations

from rest_framework import serializers

from clinic.api.inputs import SharedFieldsMixin, StrictModelSerializer, StrictSerializer, SupportedDateTimeField
from clinic.models import Practitioner
from patients.models import Patient
from sessions.models import (
    AcupunctureEntry,
    Addendum,
    Appointment,
    ArtEntry,
    EntryKind,
    HomeCareEntry,
    MassageEntry,
    TreatmentSession,
    related_rows,
)
from sessions.services import NOTE_FIELDS
from treatments.models import AcupuncturePoint, ArtProtocol, BodyRegion, Muscle, TriggerPoint
from treatments.serializers import CatalogCodeField


class _Prefetched(serializers.ListSerializer):
    """Output of a relation `selectors.notes_with_content()` prefetched into a list."""

    def get_attribute(self, instance):
        return related_rows(instance, self.source)


class _PrefetchedCodes(serializers.ManyRelatedField):
    """Catalog codes of an m2m relation prefetched into a list (read); codes in (write)."""

    def get_attribute(self, instance):
        if instance.pk is None:  # an entry being validated, not saved yet
            return []
        return related_rows(instance, self.source)


class ClinicObjectField(serializers.PrimaryKeyRelatedField):
    """A primary key among the request clinic's rows only (another clinic's id is 'does not exist')."""

    def get_queryset(self):
        return super().get_queryset().filter(clinic=self.context["request"].clinic)


class SessionSummarySerializer(serializers.ModelSerializer):
    """That a visit happened, without clinical content: what receptionists may see."""

    class Meta:
        model = TreatmentSession
        fields = ["id", "patient", "practitioner", "appointment", "started_at", "status", "signed_at"]
        read_only_fields = fields


# --- entries ----------------------------------------------------------------------------

_ENTRY_COMMON = ["id", "kind", "override_reason", "overridden_rules", "created_at"]


class _EntrySerializer(StrictModelSerializer):
    kind = serializers.SerializerMethodField()

    def get_kind(self, obj) -> str:
        return obj.kind


class ArtEntrySerializer(_EntrySerializer):
    structure = CatalogCodeField(Muscle)
    protocol = CatalogCodeField(ArtProtocol, required=False, allow_null=True)

    class Meta:
        model = ArtEntry
        fields = [*_ENTRY_COMMON, "structure", "protocol", "side", "passes", "patient_movement", "response"]
        read_only_fields = ["id", "overridden_rules", "created_at"]


class MassageEntrySerializer(_EntrySerializer):
    region = CatalogCodeField(BodyRegion)
    trigger_points = _PrefetchedCodes(child_relation=CatalogCodeField(TriggerPoint), required=False)

    class Meta:
        model = MassageEntry
        fields = [*_ENTRY_COMMON, "region", "side", "technique", "pressure", "minutes", "trigger_points"]
        read_only_fields = ["id", "overridden_rules", "created_at"]


class AcupunctureEntrySerializer(_EntrySerializer):
    point = CatalogCodeField(AcupuncturePoint)

    class Meta:
        model = AcupunctureEntry
        fields = [
            *_ENTRY_COMMON, "point", "side", "needles_inserted", "needles_removed", "depth_mm",
            "retention_minutes", "electro_stimulation",
        ]  # fmt: skip
        read_only_fields = ["id", "overridden_rules", "created_at"]


class HomeCareEntrySerializer(_EntrySerializer):
    class Meta:
        model = HomeCareEntry
        fields = [*_ENTRY_COMMON, "exercise", "sets", "reps", "frequency", "instructions"]
        read_only_fields = ["id", "overridden_rules", "created_at"]


ENTRY_SERIALIZERS = {
    EntryKind.ART: ArtEntrySerializer,
    EntryKind.MASSAGE: MassageEntrySerializer,
    EntryKind.ACUPUNCTURE: AcupunctureEntrySerializer,
    EntryKind.HOME_CARE: HomeCareEntrySerializer,
}


class EntryKindSerializer(serializers.Serializer):
    """Reads only `kind` from an entry body; the kind's own (strict) serializer checks the rest."""

    kind = serializers.ChoiceField(choices=EntryKind.choices)


# --- notes ------------------------------------------------------------------------------


class AddendumSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Addendum
        fields = ["id", "author", "created_at", "text"]
        read_only_fields = ["id", "author", "created_at"]


class NoteSerializer(SharedFieldsMixin, serializers.ModelSerializer):
    """The full note: SOAP, pain, follow-up, entries, signature and addenda (output only: its
    fields, nested ones included, are built once per process, not per response)."""

    signed_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    art_entries = _Prefetched(child=ArtEntrySerializer(), read_only=True)
    massage_entries = _Prefetched(child=MassageEntrySerializer(), read_only=True)
    acupuncture_entries = _Prefetched(child=AcupunctureEntrySerializer(), read_only=True)
    home_care = _Prefetched(child=HomeCareEntrySerializer(), read_only=True)
    addenda = _Prefetched(child=AddendumSerializer(), read_only=True)

    class Meta:
        model = TreatmentSession
        fields = [
            "id", "patient", "practitioner", "appointment", "started_at", "status",
            *NOTE_FIELDS,
            "art_entries", "massage_entries", "acupuncture_entries", "home_care",
            "signed_at", "signed_by", "content_hash", "addenda", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class NoteCreateSerializer(StrictModelSerializer):
    patient = ClinicObjectField(queryset=Patient.objects.all())
    practitioner = ClinicObjectField(queryset=Practitioner.objects.all())
    appointment = ClinicObjectField(queryset=Appointment.objects.all(), required=False, allow_null=True)
    started_at = SupportedDateTimeField(required=False)

    class Meta:
        model = TreatmentSession
        fields = ["patient", "practitioner", "appointment", "started_at", *NOTE_FIELDS]


class NoteUpdateSerializer(StrictModelSerializer):
    class Meta:
        model = TreatmentSession
        fields = list(NOTE_FIELDS)


class AddendumCreateSerializer(StrictSerializer):
    text = serializers.CharField(max_length=10_000)


class PainPointSerializer(serializers.Serializer):
    session = serializers.IntegerField(source="id")
    started_at = serializers.DateTimeField()
    pain_before = serializers.IntegerField(allow_null=True)
    pain_after = serializers.IntegerField(allow_null=True)
    status = serializers.CharField()


class PainSeriesSerializer(serializers.Serializer):
    patient = serializers.IntegerField()
    points = PainPointSerializer(many=True)


class EntryCreateSerializer(serializers.Serializer):
    """Documentation shape of `POST /notes/{id}/entries/`: `kind` plus that kind's fields."""

    kind = serializers.ChoiceField(choices=EntryKind.choices)
