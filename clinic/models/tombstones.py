"""Tombstones: what a syncing integration must drop because it was deleted, merged into another
record or erased (`/api/v1/deleted/?since=`, clinic/tombstones.py)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from clinic.models.tenancy import ClinicOwned


class TombstoneReason(models.TextChoices):
    DELETED = "deleted", "Deleted"  # the row is gone (retention, a removed note entry)
    MERGED = "merged", "Merged"  # a duplicate patient: use `replaced_by`
    ERASED = "erased", "Erased"  # still there, anonymised: drop the copy of its identity


class Tombstone(ClinicOwned):
    """One object that went away, by its type (`app_label.model`, as in the audit trail) and id.
    Rows only: no link to the object, which may no longer exist."""

    object_type = models.CharField(max_length=100)
    object_id = models.BigIntegerField()
    reason = models.CharField(max_length=10, choices=TombstoneReason.choices)
    replaced_by = models.BigIntegerField(null=True, blank=True, help_text="Merged: the id of the record kept.")
    # Which key scope may read it (`patients`, `appointments`, `clinical`): the feed shows a key
    # only the types it may read elsewhere.
    scope = models.CharField(max_length=20)
    occurred_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # GET /deleted/?since=: the clinic's newest first, from a time (cursor pages by -id).
            models.Index(fields=["clinic", "-id"], name="tombstone_clinic_id"),
            models.Index(fields=["clinic", "occurred_at"], name="tombstone_clinic_occurred"),
        ]

    def __str__(self) -> str:
        return f"{self.object_type} {self.object_id} {self.reason}"
