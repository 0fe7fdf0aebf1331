"""Audit trail: `audit_record` writes one chained row; `audit_verify` checks a clinic's chain;
`audit_checkpoint_record` anchors each chain's head outside the chain.

Call `audit_record` from the service or view that reads or changes clinical content
(notes, intake submissions, a patient's clinical summary), whatever the path: admin
page, API, FHIR, export. Pass the request when there is one; it supplies the actor,
address, user agent and request id.

One event per page a person opened: a "view" is recorded once per request, and a form posted
back to a page (a refused save that shows the page again, or a save that leaves it) does not
record another view of what the same person opened on that page in the last
`REPEAT_VIEW_WINDOW`. A page opened again (a reload, a later visit) is a new view.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from clinic.models import ApiKey, AuditAction, AuditCheckpoint, AuditEvent, Clinic
from clinic.security.addresses import client_ip

logger = logging.getLogger(__name__)

REPEAT_VIEW_WINDOW = dt.timedelta(minutes=30)
_SAFE_METHODS = frozenset({"GET", "HEAD"})

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
    object_type = obj._meta.label_lower if obj is not None else ""
    object_id = str(obj.pk) if obj is not None and obj.pk is not None else ""
    repeat_key = None
    if AuditAction(action) == AuditAction.VIEW and django_request is not None:
        repeat_key = (
            clinic_id,
            label,
            object_type,
            object_id,
            patient_id,
            via,
            reason,
            json.dumps(extra or {}, sort_keys=True, default=str),
        )
        seen = getattr(django_request, "_audited_views", None)
        if seen is None:
            seen = django_request._audited_views = {}
        if repeat_key in seen:
            return seen[repeat_key]
        method = getattr(django_request, "method", None)
        if method is not None and method not in _SAFE_METHODS:
            earlier = _recent_view(repeat_key, actor_user)
            if earlier is not None:
                seen[repeat_key] = earlier
                return earlier
    previous = _chain_head(clinic_id)
    meta = getattr(django_request, "META", {}) if django_request is not None else {}
    event = AuditEvent(
        clinic_id=clinic_id,
        occurred_at=timezone.now(),
        actor=actor_user,
        actor_label=label,
        action=AuditAction(action),
        object_type=object_type,
        object_id=object_id,
        patient_id=patient_id,
        via=via,
        ip_address=client_ip(django_request) if django_request is not None else None,
        user_agent=(meta.get("HTTP_USER_AGENT") or "")[:200],
        request_id=getattr(django_request, "request_id", "") or "",
        reason=reason,
        extra=extra or {},
        prev_hash=previous,
    )
    event.hash = _digest(event)
    event.save()
    if repeat_key is not None:
        django_request._audited_views[repeat_key] = event
    return event


def _recent_view(key: tuple, actor_user) -> AuditEvent | None:
    """The same person's identical view in the last REPEAT_VIEW_WINDOW (served by audit_clinic_patient)."""
    clinic_id, label, object_type, object_id, patient_id, via, reason, _extra = key
    rows = AuditEvent.objects.filter(
        clinic_id=clinic_id, patient_id=patient_id, action=AuditAction.VIEW, actor_label=label, actor=actor_user,
        object_type=object_type, object_id=object_id, via=via, reason=reason,
        occurred_at__gte=timezone.now() - REPEAT_VIEW_WINDOW,
    )  # fmt: skip
    extra = json.loads(_extra)
    return next((event for event in rows.order_by("-id")[:20] if event.extra == extra), None)


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    problem: str


def _checkpoint_signature(checkpoint: AuditCheckpoint) -> str:
    body = json.dumps(
        {
            "clinic_id": checkpoint.clinic_id,
            "last_event_id": checkpoint.last_event_id,
            "last_hash": checkpoint.last_hash,
            "event_count": checkpoint.event_count,
            "created_at": checkpoint.created_at.astimezone(dt.UTC).isoformat(),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hmac.new(settings.AUDIT_CHECKPOINT_KEY.encode(), body.encode(), hashlib.sha256).hexdigest()


def audit_checkpoint_is_signed(checkpoint: AuditCheckpoint) -> bool:
    return hmac.compare_digest(checkpoint.signature, _checkpoint_signature(checkpoint))


def _checkpoint_line(checkpoint: AuditCheckpoint) -> str:
    return json.dumps(
        {
            "clinic_id": checkpoint.clinic_id,
            "last_event_id": checkpoint.last_event_id,
            "last_hash": checkpoint.last_hash,
            "event_count": checkpoint.event_count,
            "created_at": checkpoint.created_at.astimezone(dt.UTC).isoformat(),
            "signature": checkpoint.signature,
        },
        separators=(",", ":"),
    )


def _chains_to_anchor() -> list[tuple[int | None, int, int | None]]:
    """(clinic id, head event id, last anchored event id) of every chain that grew since its last checkpoint.

    One query for the clinics' chains (an index probe each on audit_clinic_chain and
    audit_checkpoint_chain) and one for the sign-in chain, which has no clinic.
    """
    heads = Clinic.objects.annotate(
        head=Subquery(AuditEvent.objects.filter(clinic=OuterRef("pk")).order_by("-id").values("id")[:1]),
        anchored=Subquery(
            AuditCheckpoint.objects.filter(clinic=OuterRef("pk")).order_by("-last_event_id").values("last_event_id")[:1]
        ),
    ).filter(head__isnull=False)
    chains = list(heads.order_by("pk").values_list("pk", "head", "anchored"))
    head = AuditEvent.objects.filter(clinic__isnull=True).order_by("-id").values_list("id", flat=True).first()
    if head is not None:
        anchored = (
            AuditCheckpoint.objects.filter(clinic__isnull=True)
            .order_by("-last_event_id")
            .values_list("last_event_id", flat=True)
            .first()
        )
        chains.append((None, head, anchored))
    return [(clinic_id, head, anchored) for clinic_id, head, anchored in chains if anchored is None or head > anchored]


def audit_checkpoint_record() -> list[AuditCheckpoint]:
    """Write a signed checkpoint for every audit chain that grew since its last one; return them.

    Idempotent: a chain whose head is already anchored gets nothing, and two runs racing for
    the same head write one row (last_event_id is unique). Within a clinic, event ids grow in
    chain order (writers hold the chain's advisory lock from reading the head to commit), so
    the events up to the head form a committed prefix and counting them needs no snapshot.
    The count is the previous checkpoint's plus the events since, when that checkpoint's
    signature holds. Rows go to AUDIT_CHECKPOINT_FILE too, when set, after they commit.
    """
    written: list[AuditCheckpoint] = []
    for clinic_id, head_id, anchored_id in _chains_to_anchor():
        if anchored_id is not None and head_id < anchored_id:
            # Never anchor a shortened chain: verify_audit reports the missing rows.
            logger.error(
                "audit chain of clinic %s ends at #%s, before its checkpoint #%s", clinic_id, head_id, anchored_id
            )
            continue
        head = AuditEvent.objects.only("id", "hash").get(pk=head_id)
        previous = AuditCheckpoint.objects.filter(last_event_id=anchored_id).first() if anchored_id else None
        if previous is None or not audit_checkpoint_is_signed(previous):
            base_id, base_count = 0, 0
        else:
            base_id, base_count = previous.last_event_id, previous.event_count
        since = AuditEvent.objects.filter(clinic_id=clinic_id, id__gt=base_id, id__lte=head_id).count()
        checkpoint = AuditCheckpoint(
            clinic_id=clinic_id,
            last_event_id=head.id,
            last_hash=head.hash,
            event_count=base_count + since,
            created_at=timezone.now(),
        )
        checkpoint.signature = _checkpoint_signature(checkpoint)
        try:
            with transaction.atomic():
                checkpoint.save()
        except IntegrityError:  # a concurrent run anchored this head first
            continue
        written.append(checkpoint)
    if written and settings.AUDIT_CHECKPOINT_FILE:
        path = Path(settings.AUDIT_CHECKPOINT_FILE)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as file:
            file.writelines(_checkpoint_line(checkpoint) + "\n" for checkpoint in written)
            file.flush()
            os.fsync(file.fileno())
    return written


def audit_checkpoints_from_file(path: str | Path) -> tuple[list[AuditCheckpoint], list[str]]:
    """The checkpoints in a JSON-lines copy (unsaved instances), and one problem per unreadable line."""
    checkpoints: list[AuditCheckpoint] = []
    problems: list[str] = []
    with Path(path).open(encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                checkpoint = AuditCheckpoint(
                    clinic_id=data["clinic_id"],
                    last_event_id=int(data["last_event_id"]),
                    last_hash=str(data["last_hash"]),
                    event_count=int(data["event_count"]),
                    created_at=dt.datetime.fromisoformat(data["created_at"]),
                    signature=str(data["signature"]),
                )
                if checkpoint.created_at.tzinfo is None:
                    raise ValueError("created_at has no time zone")
            except (ValueError, KeyError, TypeError) as exc:
                problems.append(f"{path} line {number}: not a checkpoint ({exc})")
                continue
            checkpoints.append(checkpoint)
    return checkpoints, problems


def _described(checkpoint: AuditCheckpoint) -> str:
    return f"checkpoint of {checkpoint.created_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


def audit_verify(*, clinic_id: int | None, checkpoints: Iterable[AuditCheckpoint] | None = None) -> list[ChainBreak]:
    """Walk one clinic's chain oldest first; report rows whose hash or link does not hold, and
    checkpoints the chain no longer matches.

    `checkpoints` defaults to the chain's rows in the checkpoint table. Each must carry a valid
    signature (else it is reported as forged and not trusted), and its event must still be in
    the chain with the hash and the number of events before it that it recorded: so TRUNCATE,
    deleting the newest rows, and rewriting rows with recomputed hashes are all reported.
    """
    if checkpoints is None:
        checkpoints = AuditCheckpoint.objects.filter(clinic_id=clinic_id)
    breaks: list[ChainBreak] = []
    anchors: dict[tuple[int, str], AuditCheckpoint] = {}
    for checkpoint in checkpoints:
        if not audit_checkpoint_is_signed(checkpoint):
            breaks.append(
                ChainBreak(
                    checkpoint.last_event_id,
                    f"{_described(checkpoint)} does not carry a valid signature (forged or altered checkpoint)",
                )
            )
        else:
            anchors.setdefault((checkpoint.last_event_id, checkpoint.signature), checkpoint)
    pending = sorted(anchors.values(), key=lambda checkpoint: checkpoint.last_event_id, reverse=True)
    missing: list[tuple[AuditCheckpoint, int]] = []  # (checkpoint, events the chain still holds up to it)
    previous = ""
    held = 0
    for event in AuditEvent.objects.filter(clinic_id=clinic_id).order_by("id").iterator(chunk_size=2000):
        while pending and pending[-1].last_event_id < event.id:
            missing.append((pending.pop(), held))
        held += 1
        while pending and pending[-1].last_event_id == event.id:
            checkpoint = pending.pop()
            if checkpoint.last_hash != event.hash:
                breaks.append(
                    ChainBreak(event.id, f"does not match the {_described(checkpoint)} (the row was replaced)")
                )
            elif checkpoint.event_count != held:
                breaks.append(
                    ChainBreak(
                        event.id,
                        f"the {_described(checkpoint)} counted {checkpoint.event_count} events up to here, "
                        f"the table holds {held} (rows were deleted or added)",
                    )
                )
        if event.prev_hash != previous:
            breaks.append(ChainBreak(event.id, "previous-hash link broken (a row was deleted or reordered)"))
        if _digest(event) != event.hash:
            breaks.append(ChainBreak(event.id, "content does not match its hash (the row was edited)"))
        previous = event.hash
    missing.extend((checkpoint, held) for checkpoint in reversed(pending))
    if missing:
        # One line for the newest anchor lost: it names how much of the chain is gone.
        checkpoint, still_held = missing[-1]
        earlier = len(missing) - 1
        breaks.append(
            ChainBreak(
                checkpoint.last_event_id,
                f"missing: the {_described(checkpoint)} anchors {checkpoint.event_count} events up to this one, "
                f"the table holds {still_held} of them (the newest rows were deleted or the table truncated)"
                + (f"; {earlier} earlier checkpoint(s) lost their event too" if earlier else ""),
            )
        )
    return breaks
