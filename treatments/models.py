"""Treatment catalogs: shared reference data, with clinic-specific additions allowed."""

from __future__ import annotations

from django.db import models


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
