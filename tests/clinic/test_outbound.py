"""Webhook deliveries go to public addresses only (production), follow no redirects, use no proxy.

The receivers are real HTTP servers on 127.0.0.1; "public only" is switched on with the setting
production uses, and the check is seen refusing the connection on the address `localhost`
resolves to (connect time, not only when the URL is saved).
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clinic.models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from clinic.webhooks import outbound
from clinic.webhooks.delivery import webhook_delivery_attempt, webhook_endpoint_create, webhook_event_emit
from clinic.webhooks.outbound import PrivateAddressError, is_public

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


# IPv6 addresses that carry an IPv4 address inside (6to4, NAT64, IPv4-mapped, IPv4-compatible,
# Teredo) reach that IPv4 address: the guard judges what they carry. Each pair: a form that
# must be refused, with the address it hides.
EMBEDDED_PRIVATE = [
    ("2002:7f00:1::1", "6to4 of 127.0.0.1"), ("2002:a00:1::1", "6to4 of 10.0.0.1"),
    ("2002:a9fe:a9fe::1", "6to4 of 169.254.169.254"), ("2002::1", "6to4 of 0.0.0.0"),
    ("64:ff9b::7f00:1", "NAT64 of 127.0.0.1"), ("64:ff9b::a00:1", "NAT64 of 10.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "NAT64 of 169.254.169.254"), ("64:ff9b::c0a8:101", "NAT64 of 192.168.1.1"),
    ("64:ff9b:1::808:808", "local-use NAT64 prefix"), ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:10.0.0.1", "IPv4-mapped private"), ("::ffff:7f00:1", "IPv4-mapped loopback, hex"),
    ("::127.0.0.1", "IPv4-compatible loopback"), ("::10.0.0.1", "IPv4-compatible private"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"), ("2001:0:7f00:1::1", "Teredo, loopback server"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("fe80::1", "link-local"),  # noqa: S104
    ("fc00::1", "unique local"), ("fd12:3456::1", "unique local"), ("::1", "loopback"),
    ("100.64.0.1", "shared address space"), ("2001:db8::1", "documentation"),
]  # fmt: skip
EMBEDDED_PUBLIC = ["2002:808:808::1", "64:ff9b::808:808", "::ffff:8.8.8.8", "2606:4700:4700::1111", "8.8.8.8"]


@pytest.mark.parametrize(("address", "form"), EMBEDDED_PRIVATE)
def test_an_ipv6_form_carrying_a_private_ipv4_address_is_not_public(address, form):
    assert is_public(address) is False, form


@pytest.mark.parametrize("address", EMBEDDED_PUBLIC)
def test_an_ipv6_form_carrying_a_public_ipv4_address_stays_public(address):
    assert is_public(address) is True


def _url(address: str) -> str:
    return f"http://[{address}]/hooks" if ":" in address else f"http://{address}/hooks"


@pytest.mark.parametrize(
    ("url", "form"),
    [(_url(address), form) for address, form in EMBEDDED_PRIVATE],
)
def test_an_embedded_private_address_is_a_field_error_when_saving(owner_api, settings, url, form):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    response = owner_api.post("/api/v1/webhooks/", {"url": url, "events": ["patient.created"]}, format="json")
    assert response.status_code == 400, (form, response.content)
    assert "public address" in response.json()["errors"]["url"][0]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    "url", ["http://2130706433/hooks", "http://0x7f.1/hooks", "http://127.1/hooks", "http://012.0.0.1/hooks"]
)
def test_a_legacy_spelling_of_a_private_ipv4_address_is_refused_when_saving(owner_api, settings, url):
    # inet_aton would read these as 127.0.0.1 / 10.0.0.1; URL validation refuses them first.
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    response = owner_api.post("/api/v1/webhooks/", {"url": url, "events": ["patient.created"]}, format="json")
    assert response.status_code == 400, response.content
    assert "url" in response.json()["errors"]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("address", EMBEDDED_PUBLIC)
def test_a_url_with_an_embedded_public_address_is_saved(owner_api, settings, address):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    response = owner_api.post("/api/v1/webhooks/", {"url": _url(address), "events": ["patient.created"]}, format="json")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(("address", "form"), EMBEDDED_PRIVATE)
def test_a_name_resolving_to_an_embedded_private_address_is_refused_when_connecting(monkeypatch, address, form):
    # The resolver is the outside world here: a name whose DNS answer is the hostile form.
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sockaddr = (address, 80, 0, 0) if family == socket.AF_INET6 else (address, 80)
    monkeypatch.setattr(outbound.socket, "getaddrinfo", lambda *a, **k: [(family, socket.SOCK_STREAM, 6, "", sockaddr)])
    opened = []
    monkeypatch.setattr(outbound.socket, "socket", lambda *a, **k: opened.append(a))
    with pytest.raises(PrivateAddressError, match="not public"):
        outbound._connect_public(("rebound.example.com", 80), timeout=1)
    assert opened == [], form  # no socket was even created


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
