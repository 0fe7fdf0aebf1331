"""Treatment catalogs: shared reference data, with clinic-specific additions allowed."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


class Side(models.TextChoices):
    """Laterality of a region, a flag or a treatment entry. Blank means midline / not applicable."""

    LEFT = "left", "Left"
    RIGHT = "right", "Right"
    BOTH = "both", "Both sides (bilateral)"


class Modality(models.Model):
    """A kind of treatment a practitioner offers (ART, remedial massage, acupuncture, ...)."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "modalities"

    def __str__(self) -> str:
        return self.name


# --- catalogs with clinic-specific additions --------------------------------------------

# The 14 meridians of the WHO standard acupuncture point locations, with how many
# points each has (GV29 Yintang joined the Governor Vessel in the 2008 standard).
MERIDIAN_POINT_COUNTS = {
    "LU": 11, "LI": 20, "ST": 45, "SP": 21, "HT": 9, "SI": 19, "BL": 67,
    "KI": 27, "PC": 9, "TE": 23, "GB": 44, "LR": 14, "GV": 29, "CV": 24,
}  # fmt: skip
MIDLINE_MERIDIANS = frozenset({"GV", "CV"})
_POINT_CODE = re.compile(r"^(?P<meridian>[A-Z]{2})(?P<number>[1-9][0-9]?)$")
# Extra points: head/neck, chest/abdomen, back, upper and lower extremity (EX-LE4 ...).
_EXTRA_CODE = re.compile(r"^EX-(HN|CA|B|UE|LE)[1-9][0-9]?$")


class Meridian(models.TextChoices):
    LU = "LU", "Lung"
    LI = "LI", "Large Intestine"
    ST = "ST", "Stomach"
    SP = "SP", "Spleen"
    HT = "HT", "Heart"
    SI = "SI", "Small Intestine"
    BL = "BL", "Bladder"
    KI = "KI", "Kidney"
    PC = "PC", "Pericardium"
    TE = "TE", "Triple Energizer"
    GB = "GB", "Gallbladder"
    LR = "LR", "Liver"
    GV = "GV", "Governor Vessel"
    CV = "CV", "Conception Vessel"
    EX = "EX", "Extra point"


def meridian_of(code: str) -> str:
    """The meridian a valid point code belongs to ("EX" for extra points)."""
    return "EX" if code.startswith("EX-") else code[:2]


def validate_point_code(value: str) -> None:
    if _EXTRA_CODE.match(value):
        return
    match = _POINT_CODE.match(value)
    if not match or match["meridian"] not in MERIDIAN_POINT_COUNTS:
        raise ValidationError(
            f"{value!r} is not a WHO point code: use a meridian (LU LI ST SP HT SI BL KI PC TE GB LR GV CV) "
            "and a number, e.g. ST36, or an extra point such as EX-LE4.",
            code="invalid_point_code",
        )
    highest = MERIDIAN_POINT_COUNTS[match["meridian"]]
    if int(match["number"]) > highest:
        raise ValidationError(
            f"{value!r} does not exist: the {match['meridian']} meridian has points 1 to {highest}.",
            code="invalid_point_code",
        )


class CatalogQuerySet(models.QuerySet):
    def for_clinic(self, clinic):
        """Shared rows plus the additions of one clinic."""
        return self.filter(Q(clinic__isnull=True) | Q(clinic=clinic))


class CatalogRow(models.Model):
    """A catalog row: shared (clinic empty, loaded from catalog_data/) or added by one clinic."""

    clinic = models.ForeignKey(
        "clinic.Clinic",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty for the shared catalog; set for a clinic's own addition.",
    )
    code = models.SlugField(max_length=60)
    name = models.CharField(max_length=160)
    aliases = models.CharField(
        max_length=400,
        blank=True,
        help_text="Other names people search by (common, Latin, English or spaced pinyin), separated by commas.",
    )
    is_active = models.BooleanField(default=True)

    objects = CatalogQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def _catalog_constraints(prefix: str) -> list:
    # Codes are unique in the shared catalog and within each clinic's additions.
    return [
        models.UniqueConstraint(fields=["code"], condition=Q(clinic__isnull=True), name=f"{prefix}_shared_code_unique"),
        models.UniqueConstraint(fields=["clinic", "code"], name=f"{prefix}_clinic_code_unique"),
    ]


class BodyRegion(CatalogRow):
    """A body region (body_regions.yaml). A flag on a region covers every region below it."""

    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="children")

    class Meta(CatalogRow.Meta):
        constraints = _catalog_constraints("bodyregion")

    def lineage_codes(self) -> list[str]:
        """This region's code and its ancestors', nearest first."""
        codes, region, seen = [], self, set()
        while region is not None and region.pk not in seen:
            seen.add(region.pk)
            codes.append(region.code)
            region = region.parent
        return codes


class StructureKind(models.TextChoices):
    MUSCLE = "muscle", "Muscle"
    TENDON = "tendon", "Tendon"
    LIGAMENT = "ligament", "Ligament"
    FASCIA = "fascia", "Fascia"
    NERVE = "nerve", "Nerve"
    JOINT = "joint", "Joint"
    CARTILAGE = "cartilage", "Cartilage"


class Muscle(CatalogRow):
    """A muscle or other soft-tissue structure, with the region it lies in."""

    kind = models.CharField(max_length=20, choices=StructureKind.choices, default=StructureKind.MUSCLE)
    region = models.ForeignKey(BodyRegion, on_delete=models.PROTECT, related_name="muscles")
    description = models.TextField(blank=True)

    class Meta(CatalogRow.Meta):
        verbose_name = "muscle or structure"
        verbose_name_plural = "muscles and structures"
        constraints = _catalog_constraints("muscle")


class TriggerPoint(CatalogRow):
    muscle = models.ForeignKey(Muscle, on_delete=models.PROTECT, related_name="trigger_points")
    referral_regions = models.ManyToManyField(BodyRegion, related_name="referred_from", blank=True)
    referral_pattern = models.TextField(blank=True, help_text="Where the pain is felt, in words.")

    class Meta(CatalogRow.Meta):
        constraints = _catalog_constraints("triggerpoint")


class ArtProtocol(CatalogRow):
    """An Active Release Technique protocol: shorten, contact, tension, patient movement."""

    structure = models.ForeignKey(Muscle, on_delete=models.PROTECT, related_name="art_protocols")
    contact = models.TextField(help_text="Where and how the therapist holds contact on the adhesion.")
    tension = models.TextField(help_text="The shortened start position and the tension held.")
    patient_movement = models.TextField(help_text="The active movement that lengthens the tissue.")

    class Meta(CatalogRow.Meta):
        verbose_name = "ART protocol"
        constraints = _catalog_constraints("artprotocol")


class AcupuncturePoint(CatalogRow):
    """A point by WHO code (ST36, GV4, EX-LE4). `code` holds the WHO code, `name` its pinyin."""

    code = models.CharField(max_length=12, validators=[validate_point_code])
    meridian = models.CharField(max_length=2, choices=Meridian.choices)
    region = models.ForeignKey(BodyRegion, on_delete=models.PROTECT, related_name="acupuncture_points")
    is_midline = models.BooleanField(default=False, help_text="A single point on the midline: recorded without side.")
    avoid_in_pregnancy = models.BooleanField(default=False)
    cautions = models.TextField(blank=True)

    class Meta(CatalogRow.Meta):
        ordering = ["meridian", "code"]
        constraints = [
            *_catalog_constraints("acupoint"),
            models.CheckConstraint(
                condition=~Q(meridian__in=sorted(MIDLINE_MERIDIANS)) | Q(is_midline=True),
                name="acupoint_gv_cv_are_midline",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    def clean(self) -> None:
        if self.code:
            self.code = self.code.strip().upper()
            try:
                validate_point_code(self.code)
            except ValidationError as error:
                raise ValidationError({"code": error.messages}) from None
            if self.meridian and self.meridian != meridian_of(self.code):
                raise ValidationError({"meridian": f"{self.code} belongs to the {meridian_of(self.code)} meridian."})
            if meridian_of(self.code) in MIDLINE_MERIDIANS and not self.is_midline:
                raise ValidationError({"is_midline": "Governor and Conception Vessel points lie on the midline."})
