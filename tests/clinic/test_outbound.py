"""Webhook deliveries go to public addresses only (production), follow no redirects, use no proxy.

The receivers are real HTTP servers on 127.0.0.1; "public only" is switched on with the setting
production uses, and the check is seen refusing the connection on the address `localhost`
resolves to (connect time, not only when the URL is saved).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clinic.models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from clinic.webhooks.delivery import webhook_delivery_attempt, webhook_endpoint_create, webhook_event_emit
from clinic.webhooks.outbound import is_public

pytestmark = pytest.mark.django_db


class _Receiver:
    def __init__(self, status: int = 200, location: str = ""):
        self.status, self.location, self.hits = status, location, 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.hits += 1
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.end_headers()

            do_GET = do_POST  # noqa: N815 - a followed 302 would arrive as a GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    made = []

    def make(**kwargs) -> _Receiver:
        made.append(_Receiver(**kwargs))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def _deliver(clinic, url: str) -> WebhookDelivery:
    WebhookEndpoint.objects.filter(clinic=clinic).delete()
    webhook_endpoint_create(clinic=clinic, url=url, events=["patient.created"])
    event = webhook_event_emit(clinic=clinic, event="patient.created", payload={"patient_id": 7})
    return webhook_delivery_attempt(delivery_id=WebhookDelivery.objects.get(event=event).id)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
        ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False),  # noqa: S104
        ("192.0.2.10", False), ("::1", False), ("fe80::1%eth0", False), ("fc00::1", False),
        ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.5", False), ("ff02::1", False),
        ("8.8.8.8", True), ("93.184.216.34", True), ("2606:4700:4700::1111", True), ("::ffff:8.8.8.8", True),
    ],
)  # fmt: skip
def test_only_globally_routable_unicast_addresses_are_public(address, public):
    assert is_public(address) is public


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hooks", "http://localhost:8000/hooks", "http://api.localhost/hooks", "http://[::1]/hooks",
        "http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/hooks", "http://[::ffff:10.0.0.5]/hooks",
    ],
)  # fmt: skip
def test_a_private_address_is_a_field_error_when_saving(owner_api, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    response = owner_api.post("/api/v1/webhooks/", {"url": url, "events": ["patient.created"]}, format="json")
    assert response.status_code == 400, response.content
    assert "public address" in response.json()["errors"]["url"][0]
    assert not WebhookEndpoint.objects.exists()


def test_a_host_name_is_saved_and_judged_on_its_address_at_delivery(owner_api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    response = owner_api.post(
        "/api/v1/webhooks/", {"url": "http://hooks.example.com/in", "events": ["patient.created"]}, format="json"
    )
    assert response.status_code == 201, response.content


def test_a_name_resolving_to_a_private_address_is_refused_when_connecting(clinic, settings, receivers):
    receiver = receivers()
    url = f"http://localhost:{receiver.port}/hooks"  # saved through the service: the connect-time check holds
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    refused = _deliver(clinic, url)
    assert refused.status == WebhookDeliveryStatus.PENDING  # retried later, like any failure
    assert refused.response_status is None
    assert "not public" in refused.last_error
    assert receiver.hits == 0
    # The same receiver, with private addresses allowed: the policy was the only obstacle.
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    assert _deliver(clinic, url).status == WebhookDeliveryStatus.DELIVERED
    assert receiver.hits == 1


def test_redirects_are_not_followed(clinic, settings, receivers):
    target = receivers()
    redirecting = receivers(status=302, location=f"http://127.0.0.1:{target.port}/elsewhere")
    delivery = _deliver(clinic, f"http://127.0.0.1:{redirecting.port}/hooks")
    assert delivery.status == WebhookDeliveryStatus.PENDING
    assert delivery.response_status == 302
    assert (redirecting.hits, target.hits) == (1, 0)


def test_proxy_variables_are_not_used(clinic, monkeypatch, receivers):
    receiver = receivers()
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:1")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert _deliver(clinic, f"http://127.0.0.1:{receiver.port}/hooks").status == WebhookDeliveryStatus.DELIVERED
    assert receiver.hits == 1
