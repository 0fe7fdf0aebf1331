"""Treatment sessions and their notes: SOAP text, pain scores, structured entries (ART,
massage, acupuncture, home care) and addenda."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from clinic.models import ClinicOwned
from sessions.models.booking import Appointment
from treatments.models import Side

# --- treatment sessions and their notes -------------------------------------------------
# A treatment session is one visit; its SOAP note and structured entries live on it. Once
# signed, the note and its entries are locked (services refuse, and on PostgreSQL a trigger
# refuses UPDATE/DELETE); corrections are addenda.


class NoteStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SIGNED = "signed", "Signed"


class EntryKind(models.TextChoices):
    ART = "art", "Active Release Technique"
    MASSAGE = "massage", "Massage"
    ACUPUNCTURE = "acupuncture", "Acupuncture"
    HOME_CARE = "home_care", "Home care"


class TreatmentSessionQuerySet(models.QuerySet):
    def signed(self):
        return self.filter(status=NoteStatus.SIGNED)

    def of_user(self, user):
        """Sessions where `user` is the treating practitioner."""
        return self.filter(practitioner__user=user)


def _range(field: str, low: int, high: int, name: str, *, nullable: bool = True) -> models.CheckConstraint:
    condition = Q(**{f"{field}__gte": low, f"{field}__lte": high})
    if nullable:
        condition |= Q(**{f"{field}__isnull": True})
    return models.CheckConstraint(condition=condition, name=name)


class TreatmentSession(ClinicOwned):
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="treatment_sessions")
    practitioner = models.ForeignKey("clinic.Practitioner", on_delete=models.PROTECT, related_name="treatment_sessions")
    appointment = models.OneToOneField(
        Appointment, on_delete=models.PROTECT, null=True, blank=True, related_name="treatment_session"
    )
    started_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=NoteStatus.choices, default=NoteStatus.DRAFT, editable=False)
    # SOAP note
    subjective = models.TextField(
        blank=True, help_text="What the patient reports: pain, aggravating and easing factors."
    )
    objective = models.TextField(blank=True, help_text="What you find: range of motion, palpation, tests.")
    assessment = models.TextField(blank=True, help_text="Your working impression.")
    plan = models.TextField(blank=True, help_text="Treatment given and next steps.")
    pain_before = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(10)], help_text="NPRS 0-10 before treatment."
    )
    pain_after = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(10)], help_text="NPRS 0-10 after treatment."
    )
    # Follow-up recommendation, read by the reminders (a rebooking nudge).
    rebook_within_days = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="Recommend the next visit within this many days.",
    )  # fmt: skip
    course_sessions = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(52)],
        help_text="Recommended course: this many sessions in all.",
    )  # fmt: skip
    needle_incident = models.TextField(
        blank=True, help_text="When needles in and out do not match: what happened and what was done."
    )
    signed_at = models.DateTimeField(null=True, blank=True, editable=False)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, editable=False, related_name="+"
    )
    content_hash = models.CharField(max_length=64, blank=True, editable=False, help_text="SHA-256 of the signed note.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, editable=False, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TreatmentSessionQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = "treatment session"
        indexes = [
            # The therapist's "Today" page: one practitioner's sessions in a day.
            models.Index(fields=["practitioner", "started_at"], name="tsession_practitioner_start"),
            # Pain series and "last session" of one patient.
            models.Index(fields=["patient", "started_at"], name="tsession_patient_start"),
            # API lists page by -id within a clinic (cursor pagination).
            models.Index(fields=["clinic", "-id"], name="tsession_clinic_id"),
        ]
        constraints = [
            _range("pain_before", 0, 10, "tsession_pain_before_0_10"),
            _range("pain_after", 0, 10, "tsession_pain_after_0_10"),
            _range("rebook_within_days", 1, 365, "tsession_rebook_days_1_365"),
            _range("course_sessions", 1, 52, "tsession_course_sessions_1_52"),
            models.CheckConstraint(
                condition=(
                    Q(status=NoteStatus.DRAFT, signed_at__isnull=True, signed_by__isnull=True, content_hash="")
                    | (
                        Q(status=NoteStatus.SIGNED, signed_at__isnull=False, signed_by__isnull=False)
                        & ~Q(content_hash="")
                    )
                ),
                name="tsession_signed_has_who_when_hash",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient} with {self.practitioner} on {timezone.localtime(self.started_at):%Y-%m-%d}"

    @property
    def is_signed(self) -> bool:
        return self.status == NoteStatus.SIGNED

    def clean(self) -> None:
        errors = {}
        if self.patient_id and self.patient.clinic_id != self.clinic_id:
            errors["patient"] = "This patient belongs to another clinic."
        if self.practitioner_id and self.practitioner.clinic_id != self.clinic_id:
            errors["practitioner"] = "This practitioner works in another clinic."
        if self.appointment_id:
            if self.appointment.clinic_id != self.clinic_id:
                errors["appointment"] = "This appointment belongs to another clinic."
            elif self.appointment.patient_id != self.patient_id:
                errors["appointment"] = "This appointment is for another patient."
        if errors:
            raise ValidationError(errors)

    def entries(self) -> list[NoteEntry]:
        """Every structured entry, in the order of the entry kinds."""
        return [
            *related_rows(self, "art_entries"),
            *related_rows(self, "massage_entries"),
            *related_rows(self, "acupuncture_entries"),
            *related_rows(self, "home_care"),
        ]


PREFETCHED = "prefetched_{}"


def related_rows(obj: models.Model, relation: str) -> list:
    """The rows of `obj.<relation>`: the list `sessions.selectors.notes_with_content()` left on
    the object (`prefetched_<relation>`), or else read now.

    The selector prefetches into plain lists (`Prefetch(to_attr=...)`): prefetching into the
    related managers makes Django build one filtered queryset per object and relation to hold
    the rows, about 70 `filter()` calls for a therapist's day of nine notes, a sixth of its time.
    """
    rows = getattr(obj, PREFETCHED.format(relation), None)
    return list(getattr(obj, relation).all()) if rows is None else rows


class NoteEntry(ClinicOwned):
    """One technique applied, or one piece of home care. A contraindication warning met by
    the entry is saved only with a written `override_reason`; the rules it overrode are kept."""

    kind: EntryKind

    override_reason = models.TextField(
        blank=True, help_text="Required to go ahead when a safety warning applies; kept with the entry."
    )
    overridden_rules = models.JSONField(default=list, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["id"]

    # What the safety rules look at (sessions/safety.py); entries without them return None/False.
    def safety_region(self):
        return None

    def safety_side(self) -> str:
        return getattr(self, "side", "")

    def is_deep_work(self) -> bool:
        return False

    def is_needling(self) -> bool:
        return False

    def uses_electro(self) -> bool:
        return False

    def is_pregnancy_point(self) -> bool:
        return False

    def summary(self) -> str:
        return str(self)


class ArtEntry(NoteEntry):
    kind = EntryKind.ART

    session = models.ForeignKey(TreatmentSession, on_delete=models.CASCADE, related_name="art_entries")
    structure = models.ForeignKey("treatments.Muscle", on_delete=models.PROTECT, related_name="+")
    protocol = models.ForeignKey(
        "treatments.ArtProtocol", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    side = models.CharField(max_length=10, choices=Side.choices, blank=True)
    passes = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(30)])
    patient_movement = models.CharField(max_length=300, blank=True)
    response = models.TextField(blank=True, help_text="How the tissue and the patient responded.")

    class Meta(NoteEntry.Meta):
        verbose_name = "ART entry"
        verbose_name_plural = "ART entries"
        constraints = [_range("passes", 1, 30, "art_passes_1_30", nullable=False)]

    def __str__(self) -> str:
        side = f" ({self.get_side_display().lower()})" if self.side else ""
        return f"ART {self.structure}{side} x{self.passes}"

    def clean(self) -> None:
        if self.protocol_id and self.structure_id and self.protocol.structure_id != self.structure_id:
            raise ValidationError(
                {"protocol": f"This protocol is for {self.protocol.structure}, not {self.structure}."}
            )
        if self.protocol_id and not self.patient_movement:
            self.patient_movement = self.protocol.patient_movement[:300]

    def safety_region(self):
        return self.structure.region if self.structure_id else None

    def is_deep_work(self) -> bool:
        # ART holds firm contact under tension on the adhesion: always deep work.
        return True


class MassageTechnique(models.TextChoices):
    TRIGGER_POINT = "trigger_point", "Trigger-point pressure"
    STRIPPING = "stripping", "Stripping"
    EFFLEURAGE = "effleurage", "Effleurage"
    PETRISSAGE = "petrissage", "Petrissage"
    CROSS_FIBRE = "cross_fibre", "Cross-fibre friction"
    MYOFASCIAL = "myofascial", "Myofascial release"
    COMPRESSION = "compression", "Compression"


DEEP_PRESSURE = 4  # pressure 4-5 of 5 counts as deep work for the safety rules


class MassageEntry(NoteEntry):
    kind = EntryKind.MASSAGE

    session = models.ForeignKey(TreatmentSession, on_delete=models.CASCADE, related_name="massage_entries")
    region = models.ForeignKey("treatments.BodyRegion", on_delete=models.PROTECT, related_name="+")
    side = models.CharField(max_length=10, choices=Side.choices, blank=True)
    technique = models.CharField(max_length=20, choices=MassageTechnique.choices)
    pressure = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)], help_text="1 (light) to 5 (deep)."
    )
    minutes = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(180)])
    trigger_points = models.ManyToManyField("treatments.TriggerPoint", blank=True, related_name="+")

    class Meta(NoteEntry.Meta):
        verbose_name = "massage entry"
        verbose_name_plural = "massage entries"
        constraints = [
            _range("pressure", 1, 5, "massage_pressure_1_5", nullable=False),
            _range("minutes", 1, 180, "massage_minutes_1_180", nullable=False),
        ]

    def __str__(self) -> str:
        side = f" ({self.get_side_display().lower()})" if self.side else ""
        return f"{self.get_technique_display()} on {self.region}{side}, pressure {self.pressure}, {self.minutes} min"

    def safety_region(self):
        return self.region if self.region_id else None

    def is_deep_work(self) -> bool:
        return (self.pressure or 0) >= DEEP_PRESSURE


class AcupunctureEntry(NoteEntry):
    kind = EntryKind.ACUPUNCTURE

    session = models.ForeignKey(TreatmentSession, on_delete=models.CASCADE, related_name="acupuncture_entries")
    point = models.ForeignKey("treatments.AcupuncturePoint", on_delete=models.PROTECT, related_name="+")
    side = models.CharField(max_length=10, choices=Side.choices, blank=True, help_text="Leave empty for GV/CV points.")
    needles_inserted = models.PositiveSmallIntegerField(validators=[MaxValueValidator(20)])
    needles_removed = models.PositiveSmallIntegerField(validators=[MaxValueValidator(20)])
    depth_mm = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(120)])
    retention_minutes = models.PositiveSmallIntegerField(validators=[MaxValueValidator(120)])
    electro_stimulation = models.BooleanField(default=False)

    class Meta(NoteEntry.Meta):
        verbose_name = "acupuncture entry"
        verbose_name_plural = "acupuncture entries"
        constraints = [
            _range("needles_inserted", 0, 20, "acu_needles_inserted_0_20", nullable=False),
            _range("needles_removed", 0, 20, "acu_needles_removed_0_20", nullable=False),
            _range("depth_mm", 1, 120, "acu_depth_mm_1_120", nullable=False),
            _range("retention_minutes", 0, 120, "acu_retention_0_120", nullable=False),
        ]

    def __str__(self) -> str:
        side = f" ({self.get_side_display().lower()})" if self.side else ""
        electro = ", electro" if self.electro_stimulation else ""
        return f"{self.point}{side}: {self.needles_inserted} in / {self.needles_removed} out{electro}"

    def clean(self) -> None:
        if not self.point_id:
            return
        if self.point.is_midline and self.side:
            raise ValidationError({"side": f"{self.point.code} is a midline point: leave the side empty."})
        if not self.point.is_midline and not self.side:
            raise ValidationError({"side": f"{self.point.code} is a bilateral point: choose left, right or both."})
        if self.side == Side.BOTH and self.needles_inserted is not None and self.needles_inserted % 2:
            raise ValidationError({"needles_inserted": "Both sides were needled: expect an even needle count."})

    @property
    def needles_match(self) -> bool:
        return self.needles_inserted == self.needles_removed

    def safety_region(self):
        return self.point.region if self.point_id else None

    def is_needling(self) -> bool:
        return True

    def uses_electro(self) -> bool:
        return self.electro_stimulation

    def is_pregnancy_point(self) -> bool:
        return bool(self.point_id and self.point.avoid_in_pregnancy)


class HomeCareEntry(NoteEntry):
    kind = EntryKind.HOME_CARE

    session = models.ForeignKey(TreatmentSession, on_delete=models.CASCADE, related_name="home_care")
    exercise = models.CharField(max_length=200, help_text="Exercise, stretch or self-care (ice, heat).")
    sets = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(20)]
    )
    reps = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(200)]
    )
    frequency = models.CharField(max_length=100, help_text="e.g. twice daily, every other day.")
    instructions = models.TextField(blank=True)

    class Meta(NoteEntry.Meta):
        verbose_name = "home care"
        verbose_name_plural = "home care"
        constraints = [
            _range("sets", 1, 20, "homecare_sets_1_20"),
            _range("reps", 1, 200, "homecare_reps_1_200"),
        ]

    def __str__(self) -> str:
        dose = f" {self.sets}x{self.reps}" if self.sets and self.reps else ""
        return f"{self.exercise}{dose}, {self.frequency}"


ENTRY_MODELS: dict[str, type[NoteEntry]] = {
    EntryKind.ART: ArtEntry,
    EntryKind.MASSAGE: MassageEntry,
    EntryKind.ACUPUNCTURE: AcupunctureEntry,
    EntryKind.HOME_CARE: HomeCareEntry,
}


class Addendum(ClinicOwned):
    """A correction or later remark appended to a signed note. Never edited or deleted."""

    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="addenda")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    text = models.TextField()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "addenda"
        constraints = [models.CheckConstraint(condition=~Q(text=""), name="addendum_text_not_empty")]

    def __str__(self) -> str:
        return f"Addendum by {self.author} on {timezone.localtime(self.created_at):%Y-%m-%d %H:%M}"
