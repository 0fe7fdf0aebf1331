"""Webhooks: outbox rows with the change, signed deliveries to a real local HTTP receiver,
backoff, giving up after 72 hours, disabling a dead endpoint, and the API and delivery log."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from clinic.models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint, WebhookEvent
from clinic.webhooks.delivery import (
    webhook_deliveries_due,
    webhook_delivery_attempt,
    webhook_endpoint_create,
    webhook_event_emit,
    webhook_secret_of,
)

pytestmark = pytest.mark.django_db


class Receiver:
    def __init__(self):
        self.requests: list[tuple[dict, bytes]] = []
        self.status = 200
        self.url = ""


@pytest.fixture
def receiver():
    received = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.requests.append((dict(self.headers), body))
            self.send_response(received.status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # shutdown() waits for the next poll: the default half second, in each of the module's tests.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    received.url = f"http://127.0.0.1:{server.server_port}/hooks"
    yield received
    server.shutdown()
    server.server_close()


def verify(secret: str, headers: dict, body: bytes, now: int, tolerance: int = 300) -> bool:
    """What docs/webhooks.md tells receivers to do."""
    timestamp = int(headers["Clinic-Webhook-Timestamp"])
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    given = headers["Clinic-Webhook-Signature"].removeprefix("v1=")
    return abs(now - timestamp) <= tolerance and hmac.compare_digest(expected, given)


def _emit(clinic, **payload):
    return webhook_event_emit(clinic=clinic, event="patient.created", payload=payload or {"patient_id": 7})


def test_emitting_writes_the_event_and_one_delivery_per_subscribed_endpoint(
    clinic, other_clinic, receiver, django_capture_on_commit_callbacks
):
    wanted, _ = webhook_endpoint_create(clinic=clinic, url=receiver.url, events=["patient.created"])
    webhook_endpoint_create(clinic=clinic, url=receiver.url, events=["appointment.created"])
    webhook_endpoint_create(clinic=other_clinic, url=receiver.url, events=["patient.created"])
    with django_capture_on_commit_callbacks() as callbacks:
        event = _emit(clinic)
    assert [d.endpoint for d in WebhookDelivery.objects.filter(event=event)] == [wanted]
    assert len(callbacks) == 1  # the first attempt is queued only once the change has committed
    assert receiver.requests == []


def test_a_delivery_is_signed_over_timestamp_and_body(clinic, receiver):
    endpoint, secret = webhook_endpoint_create(clinic=clinic, url=receiver.url, events=["patient.created"])
    event = _emit(clinic, patient_id=42)
    delivery = WebhookDelivery.objects.get(event=event)
    sent_at = int(timezone.now().timestamp())
    result = webhook_delivery_attempt(delivery_id=delivery.id)
    assert result.status == WebhookDeliveryStatus.DELIVERED
    assert result.response_status == 200
    [(headers, body)] = receiver.requests
    assert verify(secret, headers, body, now=sent_at)
    assert not verify("whsec_wrong", headers, body, now=sent_at)
    assert not verify(secret, headers, body.replace(b"42", b"43"), now=sent_at)
    assert not verify(secret, headers, body, now=sent_at + 3600)  # a replayed old delivery
    envelope = json.loads(body)
    assert envelope["id"] == headers["Clinic-Webhook-Id"] == str(event.event_id)
    assert envelope["type"] == "patient.created"
    assert envelope["data"] == {"patient_id": 42}
    assert envelope["clinic"] == clinic.slug


def test_each_event_has_its_own_id(clinic, receiver):
    webhook_endpoint_create(clinic=clinic, url=receiver.url, events=["patient.created"])
    for event in (_emit(clinic), _emit(clinic)):
        webhook_delivery_attempt(delivery_id=WebhookDelivery.objects.get(event=event).id)
    ids = {headers["Clinic-Webhook-Id"] for headers, _ in receiver.requests}
    assert len(ids) == 2


def test_the_secret_is_stored_encrypted_and_still_signs(clinic, receiver):
    endpoint, secret = webhook_endpoint_create(clinic=clinic, url=receiver.url, events=["patient.created"])
    endpoint.refresh_from_db()
    assert secret not in endpoint.secret_encrypted
    assert webhook_secret_of(endpoint) == secret


def test_a_failed_attempt_is_retried_with_growing_delays_from_rows(clinic, receiver):
    webhook_endpoint_create(clinic=clinic, url=receiver.url, events=["patient.created"])
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        delivery = WebhookDelivery.objects.get(event=_emit(clinic))
        receiver.status = 503
        first = webhook_delivery_attempt(delivery_id=delivery.id)
        assert first.status == WebhookDeliveryStatus.PENDING
        assert first.response_status == 503
        assert first.next_attempt_at == start + dt.timedelta(minutes=1)
        assert webhook_deliveries_due() == []
        assert webhook_delivery_attempt(delivery_id=delivery.id) is None  # not due: nothing sent
        clock.shift(dt.timedelta(minutes=1))
        assert webhook_deliveries_due() == [delivery.id]
        second = webhook_delivery_attempt(delivery_id=delivery.id)
        assert second.next_attempt_at == timezone.now() + dt.timedelta(minutes=2)
        clock.shift(dt.timedelta(minutes=2))
        receiver.status = 204
        third = webhook_delivery_attempt(delivery_id=delivery.id)
    assert third.status == WebhookDeliveryStatus.DELIVERED
    assert third.attempts == 3
    assert len(receiver.requests) == 3
    assert WebhookEndpoint.objects.get().failing_since is None


def test_an_unreachable_receiver_is_a_recorded_failure(clinic, receiver):
    url = receiver.url.replace(receiver.url.split(":")[2].split("/")[0], "1")  # nothing listens on port 1
    webhook_endpoint_create(clinic=clinic, url=url, events=["patient.created"])
    delivery = webhook_delivery_attempt(delivery_id=WebhookDelivery.objects.get(event=_emit(clinic)).id)
    assert delivery.status == WebhookDeliveryStatus.PENDING
    assert delivery.response_status is None
    assert delivery.last_error


def test_retries_stop_after_72_hours(clinic, receiver):
    endpoint, _ = webhook_endpoint_create(clinic=clinic, url=receiver.url, events=["patient.created"])
    receiver.status = 500
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        delivery = WebhookDelivery.objects.get(event=_emit(clinic))
        webhook_delivery_attempt(delivery_id=delivery.id)
        clock.shift(dt.timedelta(hours=72))
        # A newer event keeps the endpoint's failure streak short of disabling it.
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now())
        last = webhook_delivery_attempt(delivery_id=delivery.id)
    assert last.status == WebhookDeliveryStatus.FAILED
    assert last.next_attempt_at is None
    assert WebhookEndpoint.objects.get().is_active


def test_an_endpoint_failing_for_days_is_disabled_and_the_owner_told(
    clinic, owner, receiver, django_capture_on_commit_callbacks
):
    endpoint, _ = webhook_endpoint_create(clinic=clinic, url=receiver.url, events=["patient.created"])
    receiver.status = 500
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        old = WebhookDelivery.objects.get(event=_emit(clinic))
        webhook_delivery_attempt(delivery_id=old.id)
        clock.shift(dt.timedelta(days=3))
        recent = WebhookDelivery.objects.get(event=_emit(clinic))
        with django_capture_on_commit_callbacks(execute=True):  # the email goes out after commit
            webhook_delivery_attempt(delivery_id=recent.id)
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert endpoint.disabled_at is not None
    assert {d.status for d in WebhookDelivery.objects.all()} == {WebhookDeliveryStatus.CANCELLED}
    [message] = mail.outbox
    assert owner.email in message.to
    assert endpoint.url in message.body
    assert WebhookDelivery.objects.filter(event=_emit(clinic)).count() == 0  # no longer subscribed


def test_only_one_worker_sends_a_delivery(clinic, receiver):
    webhook_endpoint_create(clinic=clinic, url=receiver.url, events=["patient.created"])
    delivery = WebhookDelivery.objects.get(event=_emit(clinic))
    assert webhook_delivery_attempt(delivery_id=delivery.id) is not None
    assert webhook_delivery_attempt(delivery_id=delivery.id) is None
    assert len(receiver.requests) == 1


def test_unknown_events_are_refused(clinic):
    with pytest.raises(Exception, match="Unknown webhook event"):
        webhook_event_emit(clinic=clinic, event="patient.exploded", payload={})
    assert not WebhookEvent.objects.exists()


# --- API -----------------------------------------------------------------------------


def test_owner_registers_an_endpoint_and_sees_the_secret_once(owner_api, clinic, receiver):
    response = owner_api.post("/api/v1/webhooks/", {"url": receiver.url, "events": ["patient.created"]})
    assert response.status_code == 201
    secret = response.json()["secret"]
    endpoint = WebhookEndpoint.objects.get(pk=response.json()["id"])
    assert endpoint.clinic == clinic
    assert webhook_secret_of(endpoint) == secret
    assert "secret" not in owner_api.get(f"/api/v1/webhooks/{endpoint.id}/").json()
    assert "secret_encrypted" not in owner_api.get("/api/v1/webhooks/").json()["results"][0]


def test_bad_endpoint_input_is_a_field_error(owner_api):
    response = owner_api.post("/api/v1/webhooks/", {"url": "not a url", "events": ["patient.exploded"]})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"url", "events"}
    assert not WebhookEndpoint.objects.exists()


def test_https_is_required_in_production(owner_api, settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    response = owner_api.post("/api/v1/webhooks/", {"url": "http://example.com/h", "events": ["patient.created"]})
    assert response.status_code == 400
    assert "url" in response.json()["errors"]


def test_re_enabling_a_disabled_endpoint_clears_its_failure(owner_api, clinic, receiver):
    endpoint, _ = webhook_endpoint_create(clinic=clinic, url=receiver.url, events=["patient.created"])
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        is_active=False, disabled_at=timezone.now(), failing_since=timezone.now(), disabled_reason="x"
    )
    response = owner_api.patch(f"/api/v1/webhooks/{endpoint.id}/", {"is_active": True})
    assert response.status_code == 200
    assert response.json()["disabled_at"] is None
    assert response.json()["failing_since"] is None


def test_the_delivery_log_lists_attempts_with_filters(owner_api, clinic, receiver):
    endpoint, _ = webhook_endpoint_create(clinic=clinic, url=receiver.url, events=["patient.created"])
    event = _emit(clinic)
    webhook_delivery_attempt(delivery_id=WebhookDelivery.objects.get(event=event).id)
    rows = owner_api.get("/api/v1/webhook-deliveries/", {"status": "delivered", "endpoint": endpoint.id}).json()
    [row] = rows["results"]
    assert row["event_id"] == str(event.event_id)
    assert row["event_type"] == "patient.created"
    assert row["attempts"] == 1
    assert owner_api.get("/api/v1/webhook-deliveries/", {"status": "failed"}).json()["results"] == []


def test_receptionists_cannot_manage_webhooks(receptionist_api, receiver):
    response = receptionist_api.post("/api/v1/webhooks/", {"url": receiver.url, "events": ["patient.created"]})
    assert response.status_code == 403
    assert receptionist_api.get("/api/v1/webhook-deliveries/").status_code == 403


# --- a real worker -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_delivers_an_emitted_event_from_redis(clinic, receiver):
    import time

    from django.conf import settings
    from django.db import connection

    from tests.processes import broker_to_myself, celery_worker, project_env, stop_process

    endpoint, secret = webhook_endpoint_create(clinic=clinic, url=receiver.url, events=["patient.created"])
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    env = project_env(DATABASE_URL=f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}")
    with broker_to_myself(settings.CELERY_BROKER_URL):
        worker = celery_worker(env, "--pool=solo", "--loglevel=INFO")
        try:
            event = _emit(clinic, patient_id=99)  # committed at once: the task is published to Redis
            deadline = time.monotonic() + 60
            delivery = WebhookDelivery.objects.get(event=event)
            while time.monotonic() < deadline and delivery.status != WebhookDeliveryStatus.DELIVERED:
                time.sleep(0.2)
                delivery.refresh_from_db()
            assert delivery.status == WebhookDeliveryStatus.DELIVERED, "the worker did not deliver within 60 s"
        finally:
            output = stop_process(worker)
    [(headers, body)] = receiver.requests
    assert verify(secret, headers, body, now=int(timezone.now().timestamp()))
    assert json.loads(body)["data"] == {"patient_id": 99}
    assert "deliver_webhook" in output
