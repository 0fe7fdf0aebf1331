"""The outbox engine's sending side.

`messages_dispatch_due` (beat, every minute) claims due rows and, after commit, queues
one `send_messages` task per chunk of MESSAGE_SEND_CHUNK_SIZE rows. `messages_send`
delivers a chunk one message at a time: each is re-checked from a read at most
MESSAGE_RECHECK_SECONDS old, sent outside any transaction, and its result recorded with
one UPDATE of the row it still holds before the next send.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.utils import timezone

from clinic.celery import task_named
from clinic.messaging.channels import (
    OutgoingEmail,
    OutgoingSms,
    PermanentSendError,
    TransientSendError,
    email_send,
    sms_backend,
)
from clinic.messaging.outbox import (
    OPEN_STATUSES,
    channel_problem,
    log,
    message_still_applies,
    messages_about_prefetch,
    quiet_window,
)
from clinic.messaging.render import message_attachments, message_render, message_unsubscribe_url
from clinic.models import (
    Clinic,
    Message,
    MessageChannel,
    MessageStatus,
    MessageTemplate,
    ReminderPolicy,
)

UTC = dt.UTC


def _lease() -> dt.timedelta:
    return dt.timedelta(seconds=settings.MESSAGE_CLAIM_LEASE_SECONDS)


def messages_claim_due(*, limit: int, now: dt.datetime | None = None) -> tuple[uuid.UUID, list[int]]:
    """Claim up to `limit` rows: due scheduled ones, and `sending` ones whose lease ran out
    (their worker died). Claimed rows are `sending` with a new token. Call in a transaction.

    PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED, so sweepers running at once take
    disjoint rows. Elsewhere (SQLite): a conditional UPDATE per row, kept only when it
    changed a row.
    """
    now = now or timezone.now()
    token = uuid.uuid4()
    claim = {"status": MessageStatus.SENDING, "claim_token": token, "claimed_at": now, "lease_until": now + _lease()}
    lost = Message.objects.filter(status=MessageStatus.SENDING, lease_until__lt=now).order_by("lease_until", "id")
    due = Message.objects.filter(status=MessageStatus.SCHEDULED, due_at__lte=now).order_by("due_at", "id")
    ids: list[int] = []
    if connection.features.has_select_for_update_skip_locked:
        retaken = list(lost.select_for_update(skip_locked=True).values_list("id", flat=True)[:limit])
        ids = retaken + list(
            due.select_for_update(skip_locked=True).values_list("id", flat=True)[: limit - len(retaken)]
        )
        Message.objects.filter(id__in=ids).update(**claim)
        # Count a lost claim as an attempt: a message that kills its sender (or whose
        # re-check keeps crashing) is retried a bounded number of times, then failed.
        Message.objects.filter(id__in=retaken).update(attempts=F("attempts") + 1)
    else:
        retaken = []
        for queryset in (lost, due):
            for pk in list(queryset.values_list("id", flat=True)[: limit - len(ids)]):
                if queryset.filter(pk=pk).update(**claim) == 1:
                    ids.append(pk)
                    if queryset is lost:
                        retaken.append(pk)
        Message.objects.filter(id__in=retaken).update(attempts=F("attempts") + 1)
    # A row whose sender keeps dying is given up rather than retried forever.
    given_up = Message.objects.filter(id__in=retaken, attempts__gt=settings.MESSAGE_MAX_ATTEMPTS)
    dead = set(given_up.values_list("id", flat=True))
    if dead:
        given_up.update(status=MessageStatus.FAILED, reason="gave up: no result after the last attempt", updated_at=now)
    return token, [pk for pk in ids if pk not in dead]


def _queue_sends(token: uuid.UUID, ids: list[int]) -> None:
    # One task per chunk of MESSAGE_SEND_CHUNK_SIZE rows: the per-task cost of the broker
    # and the worker is paid once per chunk, not once per message. One broker connection
    # for the whole batch.
    size = settings.MESSAGE_SEND_CHUNK_SIZE
    # Looked up by name: clinic.tasks imports this module, so importing the task would be a cycle.
    send_messages = task_named("clinic.tasks.send_messages")
    with send_messages.app.producer_or_acquire() as producer:
        for start in range(0, len(ids), size):
            send_messages.apply_async((ids[start : start + size], str(token)), producer=producer)


def messages_dispatch_due(*, now: dt.datetime | None = None) -> int:
    """Claim due messages in batches (at most MESSAGE_MAX_PER_TICK) and queue their sends after commit.

    Missed beat ticks need no bookkeeping: everything due up to now is claimed, a
    backlog over several ticks.
    """
    batch, cap = settings.MESSAGE_BATCH_SIZE, settings.MESSAGE_MAX_PER_TICK
    total = 0
    while total < cap:
        with transaction.atomic():
            token, ids = messages_claim_due(limit=min(batch, cap - total), now=now)
            if ids:
                transaction.on_commit(lambda token=token, ids=ids: _queue_sends(token, ids))
        total += len(ids)
        if len(ids) < batch:
            break
    return total


# --- the sender -----------------------------------------------------------------------


def _retry_delay(attempts: int) -> dt.timedelta:
    seconds = settings.MESSAGE_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return dt.timedelta(seconds=min(seconds, 3600))


class ResultNotRecordedError(Exception):
    """A message went to the provider but its result could not be written (the database
    is unreachable). A chunk stops there: sending on would pile up sends nobody recorded,
    each one a duplicate once its lease runs out."""


def _held(message_id: int, claim_token: str):
    """The row while this sender still holds it: `sending` under `claim_token`."""
    return Message.objects.filter(pk=message_id, status=MessageStatus.SENDING, claim_token=claim_token)


def _release(message: Message, claim_token: str, **fields) -> bool:
    """Finish a held row in one conditional UPDATE (status, reason, ...; claim and lease
    cleared). False when the claim was lost meanwhile (re-taken after its lease)."""
    updated = _held(message.pk, claim_token).update(
        **fields, claim_token=None, lease_until=None, updated_at=timezone.now()
    )
    return updated == 1


def _lease_keep(message: Message, claim_token: str, later: list[Message], now: dt.datetime) -> bool:
    """Make sure the claim outlives the send: with less than half the lease left, extend it
    (for this row and the rest of its chunk, in one transaction). False when the claim was lost."""
    lease = _lease()
    if message.lease_until - now >= lease / 2:
        return True
    with transaction.atomic():
        if _held(message.pk, claim_token).update(lease_until=now + lease) != 1:
            return False
        if later:
            Message.objects.filter(
                pk__in=[row.pk for row in later], status=MessageStatus.SENDING, claim_token=claim_token
            ).update(lease_until=now + lease)
    for row in [message, *later]:
        row.lease_until = now + lease
    return True


@dataclass(frozen=True)
class _ClinicSetup:
    """What every message of a clinic needs: the clinic, its policy, its own templates."""

    clinic: Clinic
    policy: ReminderPolicy
    templates: dict[tuple[str, str], tuple[str, str]]  # (kind, channel): (subject, body)


def _clinic_setup(clinic_id: int) -> _ClinicSetup:
    clinic = Clinic.objects.select_related("reminder_policy").get(pk=clinic_id)
    try:
        policy = clinic.reminder_policy
    except ReminderPolicy.DoesNotExist:
        policy = ReminderPolicy(clinic=clinic)
    found = MessageTemplate.objects.filter(clinic_id=clinic_id).values_list("kind", "channel", "subject", "body")
    return _ClinicSetup(clinic, policy, {(kind, channel): (subject, body) for kind, channel, subject, body in found})


def _messages_fetch(message_ids: list[int], claim_token: str, clinics: dict[int, _ClinicSetup]) -> dict[int, Message]:
    """The rows of `message_ids` still held under `claim_token`, with their patients (one
    query), what they are about (one query per kind of object) and their clinic's setup
    (read once per chunk: `clinics`)."""
    found = list(
        Message.objects.filter(pk__in=message_ids, status=MessageStatus.SENDING, claim_token=claim_token)
        .select_related("patient", "to_user")
        .order_by()
    )
    for message in found:
        if message.clinic_id not in clinics:
            clinics[message.clinic_id] = _clinic_setup(message.clinic_id)
        setup = clinics[message.clinic_id]
        message.clinic = setup.clinic
        message.template_subject, message.template_body = setup.templates.get(
            (message.kind, message.channel), (None, None)
        )
    messages_about_prefetch(found)
    return {message.pk: message for message in found}


def recipient_problem(message: Message) -> str:
    """Why the message cannot reach its recipient ('' when it can): the patient's consent and
    address, or for a staff alert the staff member's account and address."""
    user = message.to_user
    if user is None:
        return channel_problem(message.patient, message.channel)
    if not user.is_active:
        return "staff account is inactive"
    return "" if user.email else "staff member has no email address"


def message_recipient(message: Message) -> str:
    if message.to_user is not None:
        return message.to_user.email
    patient = message.patient
    return patient.email if message.channel == MessageChannel.EMAIL else str(patient.mobile_phone)


def _held_back(message: Message, policy: ReminderPolicy, now: dt.datetime) -> tuple[str, dict] | None:
    """(outcome, fields to record) when the message must not go out now, else None: it no
    longer applies, is past its cut-off, the channel lost its consent, or quiet hours."""
    reason = message_still_applies(message)
    if reason:
        return "cancelled", {"status": MessageStatus.CANCELLED, "reason": reason[:200]}
    if message.expires_at and now >= message.expires_at:
        return "skipped", {"status": MessageStatus.SKIPPED, "reason": "past its cut-off time"}
    problem = recipient_problem(message)
    if problem:
        return "skipped", {"status": MessageStatus.SKIPPED, "reason": problem}
    window = None if message.immediate else quiet_window(now, policy=policy, tz=message.clinic.tz)
    if window:
        began, ends = window
        if message.expires_at is None or ends < message.expires_at:
            return "deferred", {"status": MessageStatus.SCHEDULED, "due_at": ends}
        if message.due_at >= began:
            return "skipped", {"status": MessageStatus.SKIPPED, "reason": "quiet hours last past its cut-off time"}
    return None


def message_send(*, message_id: int, claim_token: str) -> str:
    """Deliver one claimed message (a chunk of one). Returns what happened (for logs and tests).

    Call it outside any transaction (the tasks do). A stale call (the row was sent, or
    re-claimed under another token) does nothing.
    """
    clinics: dict[int, _ClinicSetup] = {}
    message = _messages_fetch([message_id], claim_token, clinics).get(message_id)
    if message is None:
        return "stale"
    return _message_deliver(message, claim_token, clinics[message.clinic_id].policy, [], timezone.now())


def _message_deliver(
    message: Message, claim_token: str, policy: ReminderPolicy, later: list[Message], now: dt.datetime
) -> str:
    """Re-check a held row read moments ago, send it outside any transaction and record
    the result with one UPDATE. `later`: the rows of its chunk still to send, whose lease
    is extended along with this row's when it runs low."""
    held_back = _held_back(message, policy, now)
    if held_back:
        outcome, fields = held_back
        return outcome if _release(message, claim_token, **fields) else "stale"
    try:
        subject, body = message_render(message)
        attachments = message_attachments(message)
    except (TemplateSyntaxError, TemplateDoesNotExist, ValueError, KeyError, TypeError) as exc:
        # A broken clinic template must not leave the row to be re-claimed forever.
        released = _release(
            message,
            claim_token,
            status=MessageStatus.FAILED,
            reason="could not render the template",
            last_error=str(exc),
        )
        return "failed" if released else "stale"
    if not _lease_keep(message, claim_token, later, now):
        return "stale"

    recipient = message_recipient(message)
    key = f"msg-{message.pk}"
    try:
        if message.channel == MessageChannel.EMAIL:
            provider_id = email_send(
                OutgoingEmail(
                    to=recipient,
                    subject=subject,
                    body=body,
                    idempotency_key=key,
                    unsubscribe_url=message_unsubscribe_url(message),
                    attachments=attachments,
                )
            )
        else:
            provider_id = sms_backend().send(OutgoingSms(to=recipient, body=body, idempotency_key=key))
    except (TransientSendError, PermanentSendError) as exc:
        permanent = isinstance(exc, PermanentSendError)
        try:
            sent_as = {"subject": subject, "body": body, "recipient": recipient}
            return _record_failure(message, claim_token, error=str(exc), permanent=permanent, **sent_as)
        except Exception as record_exc:
            raise ResultNotRecordedError(f"message {message.pk}: failure not recorded") from record_exc

    # Recorded even if the row was re-claimed meanwhile: the message did go out, and a
    # sender holding the newer claim then finds it sent and does nothing.
    try:
        Message.objects.filter(pk=message.pk, status__in=OPEN_STATUSES).update(
            status=MessageStatus.SENT,
            sent_at=timezone.now(),
            provider_message_id=provider_id[:200],
            subject=subject,
            body=body,
            recipient=recipient,
            attempts=F("attempts") + 1,
            last_error="",
            lease_until=None,
            updated_at=timezone.now(),
        )
    except Exception as exc:
        raise ResultNotRecordedError(f"message {message.pk} was sent but not recorded") from exc
    return "sent"


def _record_failure(message: Message, claim_token: str, *, error: str, permanent: bool, **sent_as: str) -> str:
    """One UPDATE of the held row: failed (refused, or out of attempts) or back to
    scheduled with exponential backoff; the attempt, error and rendered text recorded."""
    attempts = message.attempts + 1
    if permanent or attempts >= settings.MESSAGE_MAX_ATTEMPTS:
        reason = "provider refused it" if permanent else f"gave up after {attempts} attempts"
        outcome, fields = "failed", {"status": MessageStatus.FAILED, "reason": reason}
    else:
        outcome = "retry"
        fields = {"status": MessageStatus.SCHEDULED, "due_at": timezone.now() + _retry_delay(attempts)}
    try:
        with transaction.atomic():
            released = _release(message, claim_token, attempts=attempts, last_error=error[:2000], **fields, **sent_as)
    except IntegrityError:
        # Back to scheduled would make two of a kind the outbox allows once (a newer note's
        # re-booking ladder took this one's place while it was being sent): it is superseded.
        outcome, fields = "cancelled", {"status": MessageStatus.CANCELLED, "reason": "superseded while being sent"}
        released = _release(message, claim_token, attempts=attempts, last_error=error[:2000], **fields, **sent_as)
    return outcome if released else "stale"


def messages_send(*, message_ids: list[int], claim_token: str) -> dict[int, str]:
    """Deliver a chunk of messages claimed together, one after the other.

    The chunk reads its rows (with patients, what they are about, clinic, policy and
    templates) in a few queries, and reads the rows it has not sent yet again whenever
    that read is older than MESSAGE_RECHECK_SECONDS: every message is re-checked (still
    held, still applies, consent, cut-off, quiet hours) at most that long before its own
    send. Each result is its own UPDATE, committed before the next send, so a crash
    repeats at most the one send in flight.

    One message cannot fail the others: an unexpected error is logged and leaves that row
    `sending`, so its lease runs out and the sweeper takes it again (counted as an
    attempt, given up after MESSAGE_MAX_ATTEMPTS). Only a result that cannot be recorded
    stops the chunk (ResultNotRecordedError); the rows not reached wait for their lease.
    Returns the outcome per id ("error" for an unexpected error).
    """
    recheck = dt.timedelta(seconds=settings.MESSAGE_RECHECK_SECONDS)
    outcomes: dict[int, str] = {}
    clinics: dict[int, _ClinicSetup] = {}
    held: dict[int, Message] = {}
    read_at: dt.datetime | None = None
    one_by_one = recheck <= dt.timedelta(0)
    for index, message_id in enumerate(message_ids):
        now = timezone.now()
        later_ids = message_ids[index + 1 :]
        if not one_by_one and (read_at is None or now - read_at > recheck):
            try:
                clinics = {}
                held, read_at = _messages_fetch([message_id, *later_ids], claim_token, clinics), now
            except Exception:
                # Something in the batch read fails (e.g. a row it cannot load): read one at a
                # time from here on, so it fails only the message it is about.
                log.exception("messages %s: reading them together failed; reading one at a time", message_ids[index:])
                one_by_one = True
        try:
            if one_by_one:
                clinics = {}
                held = _messages_fetch([message_id], claim_token, clinics)
            message = held.pop(message_id, None)
            if message is None:
                outcomes[message_id] = "stale"
                continue
            policy = clinics[message.clinic_id].policy
            outcomes[message_id] = _message_deliver(message, claim_token, policy, list(held.values()), now)
        except ResultNotRecordedError:
            raise
        except Exception:
            log.exception("message %s: not sent; it is taken again when its claim runs out", message_id)
            outcomes[message_id] = "error"
    return outcomes
