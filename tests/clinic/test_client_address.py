"""The client's address behind proxies (clinic.security.addresses), and everyone who uses it:
sign-in throttling (django-axes), the intake pages' wrong-link limit and the audit trail."""

from __future__ import annotations

import secrets

import pytest
from django.test import override_settings

from clinic.models import AuditAction, AuditEvent
from clinic.security.addresses import TrustedProxies, client_address
from intake.pages import MISS_LIMIT

PASSWORD = "a-long-test-password"
PROXY = "10.0.0.5"  # our load balancer
EDGE = "10.0.1.9"  # a CDN or a second proxy in front of it

NONE = TrustedProxies()
ONE = TrustedProxies.parse("1")
TWO = TrustedProxies.parse("2")
NETWORKS = TrustedProxies.parse("10.0.0.0/16, 2001:db8::/32")


def _public() -> str:
    """A client address of its own (no other test or parallel worker counts for it)."""
    bits = secrets.randbits(16)
    return f"198.51.{bits >> 8}.{bits & 255}"


@pytest.mark.parametrize(
    ("remote", "forwarded", "trusted", "expected"),
    [
        # No proxy trusted: the header is the client's own words and is ignored.
        ("203.0.113.7", "1.2.3.4", NONE, "203.0.113.7"),
        ("203.0.113.7", None, ONE, "203.0.113.7"),
        # One proxy: the address it saw, whatever the client wrote before it.
        (PROXY, "203.0.113.7", ONE, "203.0.113.7"),
        (PROXY, "1.2.3.4, 203.0.113.7", ONE, "203.0.113.7"),
        # Two proxies.
        (EDGE, "203.0.113.7, 10.0.0.5", TWO, "203.0.113.7"),
        (EDGE, "6.6.6.6, 203.0.113.7, 10.0.0.5", TWO, "203.0.113.7"),
        # Networks: every hop inside them is ours; the first outside is the client.
        (PROXY, "203.0.113.7", NETWORKS, "203.0.113.7"),
        (EDGE, "6.6.6.6, 203.0.113.7, 10.0.0.5", NETWORKS, "203.0.113.7"),
        # A client reaching gunicorn directly, past the proxies, with a forged header.
        ("203.0.113.7", "10.0.0.5", NETWORKS, "203.0.113.7"),
        ("203.0.113.7", "1.2.3.4", NETWORKS, "203.0.113.7"),
        # Junk left of our proxy's entry: the hop our proxy saw stands.
        (PROXY, "not-an-address, 203.0.113.7", NETWORKS, "203.0.113.7"),
        (PROXY, "203.0.113.7, <script>", ONE, "10.0.0.5"),
        # Proxies write ports and brackets sometimes; IPv4-mapped IPv6 is the IPv4 address.
        (PROXY, "[2001:db8:ffff::1]:4711", ONE, "2001:db8:ffff::1"),
        (PROXY, "203.0.113.7:5123", ONE, "203.0.113.7"),
        ("::ffff:10.0.0.5", "203.0.113.7", NETWORKS, "203.0.113.7"),
        (PROXY, "2001:db8::3, 203.0.113.7", NETWORKS, "203.0.113.7"),
    ],
)
def test_the_client_is_the_first_hop_our_proxies_did_not_write(remote, forwarded, trusted, expected):
    assert client_address(remote, forwarded, trusted) == expected


def test_trusted_proxies_reads_a_count_or_networks_and_refuses_anything_else():
    assert TrustedProxies.parse("") == NONE
    assert TrustedProxies.parse("0") == NONE
    assert TrustedProxies.parse("2").count == 2
    assert [str(n) for n in TrustedProxies.parse("10.0.0.7,172.16.0.0/12").networks] == ["10.0.0.7/32", "172.16.0.0/12"]
    with pytest.raises(ValueError, match="does not appear to be"):
        TrustedProxies.parse("proxy.example")


# --- the consumers ------------------------------------------------------------------------


def _behind(*hops: str, proxies: tuple[str, ...] = (PROXY,)) -> dict:
    """Request headers of a request from hops[0] through our proxies (the last one connects)."""
    chain = [*hops, *proxies]
    return {"REMOTE_ADDR": chain[-1], "HTTP_X_FORWARDED_FOR": ", ".join(chain[:-1])}


def _guess(client, attempt: int, **meta) -> int:
    return client.get(f"/intake/guess-{secrets.token_hex(4)}-{attempt}/", **meta).status_code


@pytest.mark.django_db
@override_settings(TRUSTED_PROXIES=ONE)
def test_behind_one_proxy_one_guesser_does_not_lock_every_patient_out(client):
    guesser, patient = _public(), _public()
    for attempt in range(MISS_LIMIT):
        assert _guess(client, attempt, **_behind(guesser)) == 404
    assert _guess(client, 99, **_behind(guesser)) == 429
    # Same load balancer, another client: not counted with the guesser.
    assert _guess(client, 0, **_behind(patient)) == 404


@pytest.mark.django_db
@override_settings(TRUSTED_PROXIES=TWO)
def test_behind_two_proxies_the_limit_counts_the_client_not_the_edge(client):
    guesser, patient = _public(), _public()
    for attempt in range(MISS_LIMIT):
        assert _guess(client, attempt, **_behind(guesser, proxies=(PROXY, EDGE))) == 404
    assert _guess(client, 99, **_behind(guesser, proxies=(PROXY, EDGE))) == 429
    assert _guess(client, 0, **_behind(patient, proxies=(PROXY, EDGE))) == 404


@pytest.mark.django_db
@override_settings(TRUSTED_PROXIES=NETWORKS)
def test_a_spoofed_forwarded_for_from_an_untrusted_client_does_not_escape_the_limit(client):
    guesser = _public()
    for attempt in range(MISS_LIMIT):
        forged = {"REMOTE_ADDR": guesser, "HTTP_X_FORWARDED_FOR": _public()}
        assert _guess(client, attempt, **forged) == 404
    assert _guess(client, 99, REMOTE_ADDR=guesser, HTTP_X_FORWARDED_FOR=_public()) == 429


def _sign_in(client, username, password=PASSWORD, **meta):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password}, **meta)


@pytest.mark.django_db
@override_settings(TRUSTED_PROXIES=ONE)
def test_behind_a_proxy_an_attacker_cannot_lock_a_staff_member_out(client, receptionist):
    attacker, desk = _public(), _public()
    for _ in range(5):
        _sign_in(client, receptionist.username, "wrong-password", **_behind(attacker))
    assert _sign_in(client, receptionist.username, **_behind(attacker)).status_code == 429
    # The receptionist at the front desk, through the same load balancer, signs in.
    assert _sign_in(client, receptionist.username, **_behind(desk)).status_code == 302


@pytest.mark.django_db
@override_settings(TRUSTED_PROXIES=NONE)
def test_without_trusted_proxies_a_forged_header_does_not_reset_the_throttle(client, receptionist):
    attacker = _public()
    for _ in range(5):
        _sign_in(client, receptionist.username, "wrong-password", REMOTE_ADDR=attacker, HTTP_X_FORWARDED_FOR=_public())
    response = _sign_in(client, receptionist.username, REMOTE_ADDR=attacker, HTTP_X_FORWARDED_FOR=_public())
    assert response.status_code == 429


@pytest.mark.django_db
@override_settings(TRUSTED_PROXIES=TWO)
def test_the_audit_trail_records_the_client_behind_two_proxies(client, receptionist):
    person = _public()
    _sign_in(client, receptionist.username, "wrong-password", **_behind("6.6.6.6", person, proxies=(PROXY, EDGE)))
    event = AuditEvent.objects.get(action=AuditAction.LOGIN_FAILED)
    assert event.ip_address == person
