"""Standard Webhooks: every delivery verifies with the `standardwebhooks` package (a verifier
no one here wrote), alongside the deprecated Clinic-Webhook-* headers."""

from __future__ import annotations

import base64
import datetime as dt
import secrets

import pytest
import time_machine
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from clinic.models import WebhookDelivery, WebhookDeliveryStatus
from clinic.webhooks import delivery as webhooks
from clinic.webhooks.delivery import (
    webhook_delivery_attempt,
    webhook_endpoint_create,
    webhook_event_emit,
    webhook_signing_key,
)
from tests.api import test_webhooks

pytestmark = pytest.mark.django_db
receiver = test_webhooks.receiver  # the local HTTP receiver fixture
verify = test_webhooks.verify  # what docs/webhooks.md shows for the deprecated headers


def _deliver(clinic, receiver, **payload):
    event = webhook_event_emit(clinic=clinic, event="patient.created", payload=payload or {"patient_id": 7})
    result = webhook_delivery_attempt(delivery_id=WebhookDelivery.objects.get(event=event).id)
    assert result.status == WebhookDeliveryStatus.DELIVERED
    return event, receiver.requests[-1]


def test_a_delivery_verifies_with_the_standard_webhooks_library(clinic, receiver):
    _, secret = webhook_endpoint_create(clinic=clinic, url=receiver.url, events=["patient.created"])
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    event, (headers, body) = _deliver(clinic, receiver, patient_id=42)
    lowered = {name.lower(): value for name, value in headers.items()}
    assert lowered["webhook-id"] == str(event.event_id)
    assert lowered["webhook-signature"].startswith("v1,")
    payload = Webhook(secret).verify(body, headers)
    assert payload["data"] == {"patient_id": 42}
    assert payload["id"] == lowered["webhook-id"]


def test_a_tampered_or_foreign_delivery_fails_the_standard_verifier(clinic, receiver):
    _, secret = webhook_endpoint_create(clinic=clinic, url=receiver.url, events=["patient.created"])
    _, (headers, body) = _deliver(clinic, receiver, patient_id=42)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"42", b"43"), headers)
    other = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)
    forged = {**{name.lower(): value for name, value in headers.items()}, "webhook-id": "msg_other"}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, forged)


def test_a_replayed_old_delivery_fails_the_standard_verifier(clinic, receiver):
    _, secret = webhook_endpoint_create(clinic=clinic, url=receiver.url, events=["patient.created"])
    _, (headers, body) = _deliver(clinic, receiver)
    with (
        time_machine.travel(dt.datetime.now(tz=dt.UTC) + dt.timedelta(minutes=10)),
        pytest.raises(WebhookVerificationError),
    ):
        Webhook(secret).verify(body, headers)


def test_the_deprecated_headers_still_come_during_the_deprecation_period(clinic, receiver):
    _, secret = webhook_endpoint_create(clinic=clinic, url=receiver.url, events=["patient.created"])
    _, (headers, body) = _deliver(clinic, receiver)
    assert verify(secret, headers, body, now=int(headers["Clinic-Webhook-Timestamp"]))
    lowered = {name.lower(): value for name, value in headers.items()}
    assert lowered["clinic-webhook-id"] == lowered["webhook-id"]
    assert dt.date(2026, 12, 31) < webhooks.LEGACY_HEADERS_SUNSET


def test_an_endpoint_with_an_older_url_safe_secret_verifies_after_the_documented_conversion(clinic, receiver):
    endpoint, _ = webhook_endpoint_create(clinic=clinic, url=receiver.url, events=["patient.created"])
    old_secret = "whsec_" + secrets.token_urlsafe(32)  # how secrets were made before Standard Webhooks
    while "-" not in old_secret and "_" not in old_secret[6:]:
        old_secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint.secret_encrypted = webhooks._fernet().encrypt(old_secret.encode()).decode()
    endpoint.save(update_fields=["secret_encrypted"])
    _, (headers, body) = _deliver(clinic, receiver)
    # docs/webhooks.md: the standard form of an older secret
    converted = "whsec_" + base64.b64encode(base64.urlsafe_b64decode(old_secret[6:] + "=")).decode()
    assert Webhook(converted).verify(body, headers)["type"] == "patient.created"
    assert webhook_signing_key(old_secret) == webhook_signing_key(converted)
    assert verify(old_secret, headers, body, now=int(headers["Clinic-Webhook-Timestamp"]))
