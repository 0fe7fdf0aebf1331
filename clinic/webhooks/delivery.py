"""Signed webhooks: outbox rows written with the change, delivered by Celery with backoff.

Other apps report a change by calling, inside the service that makes it:

    webhook_event_emit(clinic=patient.clinic, event="patient.created", payload={"patient_id": patient.id})

The event row and one delivery row per subscribed endpoint are written in the caller's
transaction, so an event exists exactly when the change committed. After commit a task tries
each delivery at once; failures are retried by `webhook_deliveries_sweep` (beat, every minute),
which claims rows whose `next_attempt_at` has come: no far-future ETAs on the broker.

Payloads carry ids and non-clinical fields only (no notes, intake answers, flags or pain
scores): a receiver that needs more calls the API with its key, where scopes and the audit
trail apply. Signing is described for receivers in docs/webhooks.md: each delivery carries the
Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`, verifiable
with any Standard Webhooks library) and, until `LEGACY_HEADERS_SUNSET`, the older
`Clinic-Webhook-*` headers.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.error
import urllib.request

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from clinic.celery import task_named
from clinic.degrade import publish
from clinic.models import (
    Clinic,
    Membership,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventType,
)
from clinic.security.roles import Role
from clinic.webhooks.outbound import open_url

log = logging.getLogger(__name__)

# Standard Webhooks (https://www.standardwebhooks.com/): the headers every delivery carries.
STANDARD_ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
# The headers of the first, home-made scheme: still sent, deprecated (docs/webhooks.md).
SIGNATURE_HEADER = "Clinic-Webhook-Signature"
TIMESTAMP_HEADER = "Clinic-Webhook-Timestamp"
ID_HEADER = "Clinic-Webhook-Id"
LEGACY_HEADERS_SUNSET = dt.date(2027, 6, 30)
RETRY_FOR = dt.timedelta(hours=72)
DISABLE_AFTER = dt.timedelta(days=3)  # an endpoint failing this long is switched off and the owner told
CLAIM_FOR = dt.timedelta(minutes=5)  # an attempt in flight holds its row this long
TIMEOUT_SECONDS = 10
MAX_BACKOFF = dt.timedelta(hours=12)


# --- secrets --------------------------------------------------------------------------


def _fernet() -> Fernet:
    # Rotating SECRET_KEY makes stored webhook secrets unreadable: rotate them with it.
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"clinic.webhooks.delivery.secret").derive(
        settings.SECRET_KEY.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def webhook_secret_of(endpoint: WebhookEndpoint) -> str:
    return _fernet().decrypt(endpoint.secret_encrypted.encode()).decode()


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of "{timestamp}.{body}" with the endpoint's secret (the deprecated scheme)."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def webhook_signing_key(secret: str) -> bytes:
    """The key a Standard Webhooks secret encodes: the base64 after `whsec_`. Secrets made since
    Standard Webhooks are standard base64 (what verifier libraries decode); older ones are
    URL-safe base64 without padding, read here with either alphabet so they sign with the same
    32 random bytes (docs/webhooks.md shows receivers the one-line conversion)."""
    encoded = secret.removeprefix("whsec_").replace("-", "+").replace("_", "/")
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)


def webhook_standard_signature(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks: `v1,` + base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"."""
    message = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(webhook_signing_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The signed headers of one delivery attempt: Standard Webhooks, then the deprecated ones."""
    return {
        STANDARD_ID_HEADER: msg_id,
        STANDARD_TIMESTAMP_HEADER: str(timestamp),
        STANDARD_SIGNATURE_HEADER: webhook_standard_signature(
            secret=secret, msg_id=msg_id, timestamp=timestamp, body=body
        ),
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: "v1=" + webhook_signature(secret=secret, timestamp=timestamp, body=body),
    }


# --- endpoints ------------------------------------------------------------------------


@transaction.atomic
def webhook_endpoint_create(
    *, clinic: Clinic, url: str, events: list[str], description: str = "", is_active: bool = True
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint; return it and its signing secret (shown to the caller once)."""
    # Standard Webhooks form: `whsec_` + standard base64 of 32 random bytes.
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    endpoint = WebhookEndpoint(
        clinic=clinic,
        url=url,
        events=sorted(set(events)),
        description=description,
        is_active=is_active,
        secret_encrypted=_fernet().encrypt(secret.encode()).decode(),
    )
    endpoint.full_clean()
    endpoint.save()
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_update(*, endpoint: WebhookEndpoint, **changes) -> WebhookEndpoint:
    for name in ("url", "events", "description", "is_active"):
        if name in changes:
            setattr(endpoint, name, sorted(set(changes[name])) if name == "events" else changes[name])
    if changes.get("is_active"):
        endpoint.disabled_at, endpoint.disabled_reason, endpoint.failing_since = None, "", None
    endpoint.full_clean()
    endpoint.save()
    return endpoint


# --- events ---------------------------------------------------------------------------


@transaction.atomic
def webhook_event_emit(*, clinic: Clinic, event: WebhookEventType | str, payload: dict) -> WebhookEvent:
    """Record an event and queue it for every active endpoint of the clinic that wants it."""
    if event not in WebhookEventType.values:
        raise ValidationError({"event": f"Unknown webhook event {event!r}."})
    row = WebhookEvent(clinic=clinic, type=event, payload=json.loads(json.dumps(payload, cls=DjangoJSONEncoder)))
    # Written with every booking and change: the clinic is the caller's instance and the event
    # id a fresh UUID, so checking either (two queries) would only repeat what the database enforces.
    row.full_clean(exclude=["clinic"], validate_unique=False)
    row.save()
    now = timezone.now()
    endpoints = [e for e in WebhookEndpoint.objects.filter(clinic=clinic, is_active=True) if event in e.events]
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(clinic=clinic, endpoint=e, event=row, next_attempt_at=now, created_at=now) for e in endpoints
    )
    if deliveries:
        ids = [d.pk for d in deliveries]
        # With the broker down the deliveries stay pending and due: the sweeper queues them.
        # By name: clinic.tasks imports this module to run the deliveries.
        deliver = task_named("clinic.tasks.deliver_webhook")
        transaction.on_commit(lambda: [publish(deliver, pk) for pk in ids])
    return row


def webhook_body(event: WebhookEvent) -> bytes:
    envelope = {
        "id": str(event.event_id),
        "type": event.type,
        "created_at": event.created_at.isoformat(),
        "clinic": event.clinic.slug,
        "data": event.payload,
    }
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()


# --- delivery -------------------------------------------------------------------------


def backoff(attempts: int) -> dt.timedelta:
    """1, 2, 4, 8 ... minutes after each failed attempt, at most 12 hours apart."""
    return min(dt.timedelta(minutes=2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def _claim(delivery_id: int, now: dt.datetime) -> bool:
    """Take a due pending delivery for one attempt; False if it is not due or another worker has it."""
    return bool(
        WebhookDelivery.objects.filter(
            pk=delivery_id,
            status=WebhookDeliveryStatus.PENDING,
            next_attempt_at__lte=now,
            endpoint__is_active=True,
        ).update(next_attempt_at=now + CLAIM_FOR)
    )


def _post(url: str, body: bytes, headers: dict) -> tuple[int | None, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - http(s) only, validated URLField
    try:
        # Endpoint URLs are validated http(s) URLs (https only in production); open_url connects
        # to public addresses only, follows no redirects and uses no proxy (clinic.webhooks.outbound).
        with open_url(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return None, str(getattr(exc, "reason", exc))[:500]


def webhook_delivery_attempt(*, delivery_id: int) -> WebhookDelivery | None:
    """One attempt: POST the signed event, then record success, the next retry, or giving up.

    The HTTP call happens outside any transaction; the claim keeps two workers off one row.
    """
    now = timezone.now()
    if not _claim(delivery_id, now):
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint", "event__clinic").get(pk=delivery_id)
    endpoint = delivery.endpoint
    body = webhook_body(delivery.event)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "clinic-webhooks/1",
        **webhook_headers(
            secret=webhook_secret_of(endpoint), msg_id=str(delivery.event.event_id), timestamp=timestamp, body=body
        ),
    }
    status, error = _post(endpoint.url, body, headers)
    ok = status is not None and 200 <= status < 300
    return _record_attempt(delivery=delivery, ok=ok, status=status, error=error)


@transaction.atomic
def _record_attempt(*, delivery: WebhookDelivery, ok: bool, status: int | None, error: str) -> WebhookDelivery:
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.response_status = status
    delivery.last_error = "" if ok else error or f"HTTP {status}"
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
    if ok:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = WebhookDeliveryStatus.DELIVERED, now, None
        if endpoint.failing_since is not None:
            endpoint.failing_since = None
            endpoint.save(update_fields=["failing_since", "updated_at"])
    else:
        if now - delivery.created_at >= RETRY_FOR:
            delivery.status, delivery.next_attempt_at = WebhookDeliveryStatus.FAILED, None
        else:
            delivery.next_attempt_at = now + backoff(delivery.attempts)
        if endpoint.failing_since is None:
            endpoint.failing_since = now
            endpoint.save(update_fields=["failing_since", "updated_at"])
        elif endpoint.is_active and now - endpoint.failing_since >= DISABLE_AFTER:
            _disable(endpoint, now)
            if delivery.status == WebhookDeliveryStatus.PENDING:
                delivery.status, delivery.next_attempt_at = WebhookDeliveryStatus.CANCELLED, None
    delivery.save()
    return delivery


def _disable(endpoint: WebhookEndpoint, now: dt.datetime) -> None:
    endpoint.is_active = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = f"Failing since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC."
    endpoint.save(update_fields=["is_active", "disabled_at", "disabled_reason", "updated_at"])
    WebhookDelivery.objects.filter(endpoint=endpoint, status=WebhookDeliveryStatus.PENDING).update(
        status=WebhookDeliveryStatus.CANCELLED, next_attempt_at=None, updated_at=now
    )
    recipients = list(
        Membership.objects.filter(clinic_id=endpoint.clinic_id, role=Role.OWNER, is_active=True)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    clinic = Clinic.objects.get(pk=endpoint.clinic_id)
    if clinic.email:
        recipients.append(clinic.email)
    if recipients:
        url, reason = endpoint.url, endpoint.disabled_reason
        transaction.on_commit(
            lambda: send_mail(
                subject=f"[{clinic.name}] Webhook endpoint disabled",
                message=(
                    f"The webhook endpoint {url} has failed every delivery for "
                    f"{DISABLE_AFTER.days} days and was disabled. {reason}\n\n"
                    "Fix the receiver, then re-enable the endpoint in the admin or with "
                    'PATCH /api/v1/webhooks/<id>/ {"is_active": true}.'
                ),
                from_email=None,
                recipient_list=sorted(set(recipients)),
                fail_silently=True,
            )
        )
    log.warning("webhook endpoint %s disabled: %s", endpoint.pk, endpoint.disabled_reason)


def webhook_deliveries_due(*, now: dt.datetime | None = None, limit: int = 500) -> list[int]:
    """Ids of pending deliveries whose next attempt has come (the sweeper queues them)."""
    return list(
        WebhookDelivery.objects.filter(
            status=WebhookDeliveryStatus.PENDING,
            next_attempt_at__lte=now or timezone.now(),
            endpoint__is_active=True,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
