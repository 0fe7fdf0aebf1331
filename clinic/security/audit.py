"""Audit trail: `audit_record` writes one chained row; `audit_verify` checks a clinic's chain.

Call `audit_record` from the service or view that reads or changes clinical content
(notes, intake submissions, a patient's clinical summary), whatever the path: admin
page, API, FHIR, export. Pass the request when there is one; it supplies the actor,
address, user agent and request id.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from clinic.models import ApiKey, AuditAction, AuditEvent, Clinic

_HASHED_FIELDS = (
    "clinic_id", "occurred_at", "actor_id", "actor_label", "action", "object_type", "object_id",
    "patient_id", "via", "ip_address", "user_agent", "request_id", "reason", "extra", "prev_hash",
)  # fmt: skip


def _digest(event: AuditEvent) -> str:
    payload = {name: getattr(event, name) for name in _HASHED_FIELDS}
    payload["occurred_at"] = event.occurred_at.isoformat()
    body = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


_CHAIN_HEAD_SQL = (
    "SELECT pg_advisory_xact_lock(%s, %s); "
    'SELECT "hash" FROM "clinic_auditevent" WHERE "clinic_id" = %s ORDER BY "id" DESC LIMIT 1'
)


def _chain_head(clinic_id: int | None) -> str:
    """Lock one clinic's chain, then read its last hash: each writer sees the true previous hash.

    PostgreSQL: both statements go in one round trip (a two-statement simple query). The order
    is what makes it safe: each statement takes its own snapshot (READ COMMITTED), so the read
    sees every row committed by the writer that held the lock before us. (One statement doing
    both would read with a snapshot taken before it waited for the lock, and fork the chain.)
    The two-key lock takes int4 keys; ids are bigint, so fold them (a shared key only
    serialises two clinics' writers, it never lets one chain interleave).
    """
    if connection.vendor != "postgresql":  # SQLite: transaction_mode=IMMEDIATE already serialises writers
        previous = AuditEvent.objects.filter(clinic_id=clinic_id).order_by("-id").values_list("hash", flat=True)
        return previous.first() or ""
    params = [7_310_001, (clinic_id or 0) % 2_147_483_647]
    if clinic_id is None:
        sql = _CHAIN_HEAD_SQL.replace('"clinic_id" = %s', '"clinic_id" IS NULL')
    else:
        sql, params = _CHAIN_HEAD_SQL, [*params, clinic_id]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        cursor.nextset()  # past the lock's result
        row = cursor.fetchone()
    return row[0] if row else ""


def _actor_of(request, actor) -> tuple[object | None, str]:
    if actor is not None:
        return actor, actor.get_username()
    if request is None:
        return None, "system"
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiKey):
        return None, f"api-key:{auth.prefix}"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user, user.get_username()
    return None, "anonymous"


@transaction.atomic
def audit_record(
    *,
    action: AuditAction | str,
    clinic: Clinic | None = None,
    obj=None,
    patient_id: int | None = None,
    request=None,
    actor=None,
    via: str = "",
    reason: str = "",
    extra: dict | None = None,
) -> AuditEvent:
    django_request = getattr(request, "_request", request)
    actor_user, label = _actor_of(request, actor)
    # Without a clinic, the object's clinic by its id: fetching the row would cost a query per read.
    clinic_id = clinic.pk if clinic is not None else getattr(obj, "clinic_id", None)
    if patient_id is None and obj is not None:
        is_patient = obj._meta.label_lower == "patients.patient"
        patient_id = obj.pk if is_patient else getattr(obj, "patient_id", None)
    previous = _chain_head(clinic_id)
    meta = getattr(django_request, "META", {}) if django_request is not None else {}
    event = AuditEvent(
        clinic_id=clinic_id,
        occurred_at=timezone.now(),
        actor=actor_user,
        actor_label=label,
        action=AuditAction(action),
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        patient_id=patient_id,
        via=via,
        ip_address=meta.get("REMOTE_ADDR") or None,
        user_agent=(meta.get("HTTP_USER_AGENT") or "")[:200],
        request_id=getattr(django_request, "request_id", "") or "",
        reason=reason,
        extra=extra or {},
        prev_hash=previous,
    )
    event.hash = _digest(event)
    event.save()
    return event


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    problem: str


def audit_verify(*, clinic_id: int | None) -> list[ChainBreak]:
    """Walk one clinic's chain oldest first; report rows whose hash or link does not hold."""
    breaks: list[ChainBreak] = []
    previous = ""
    for event in AuditEvent.objects.filter(clinic_id=clinic_id).order_by("id").iterator(chunk_size=2000):
        if event.prev_hash != previous:
            breaks.append(ChainBreak(event.id, "previous-hash link broken (a row was deleted or reordered)"))
        if _digest(event) != event.hash:
            breaks.append(ChainBreak(event.id, "content does not match its hash (the row was edited)"))
        previous = event.hash
    return breaks
