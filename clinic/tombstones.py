"""The deletion feed for syncing integrations: services that delete, merge or erase a record
call `tombstones_record` in their own transaction (patients: merge, erase, retention; sessions
and intake: retention; notes: a removed entry), and `GET /api/v1/deleted/?since=` lists them
(clinic/api/views.py `TombstoneViewSet`)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models
from django.utils import timezone

from clinic.models import Clinic, Tombstone, TombstoneReason


def tombstones_record(
    *,
    clinic: Clinic,
    model: type[models.Model],
    ids: Iterable[int],
    reason: TombstoneReason | str,
    scope: str,
    replaced_by: int | None = None,
) -> list[Tombstone]:
    """One tombstone per id of `model` (named `app_label.model`, as in the audit trail)."""
    now = timezone.now()
    rows = [
        Tombstone(
            clinic=clinic,
            object_type=model._meta.label_lower,
            object_id=pk,
            reason=TombstoneReason(reason),
            scope=scope,
            replaced_by=replaced_by,
            occurred_at=now,
        )
        for pk in sorted(set(ids))
    ]
    return Tombstone.objects.bulk_create(rows)
