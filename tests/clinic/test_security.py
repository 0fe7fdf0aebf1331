"""Staff sign-in hardening: throttling with a finite cool-off, session limits, two-factor, audit, CSP."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.test import override_settings
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from clinic.models import AuditAction, AuditEvent
from clinic.security.roles import Role
from tests.factories import ClinicFactory, staff

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-test-password"


def _sign_in(client, username, password=PASSWORD):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


def _current_code(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


# --- throttling ---------------------------------------------------------------------------


def test_repeated_failures_are_throttled_with_429_then_the_cool_off_ends(client, receptionist):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(4):
            assert _sign_in(client, receptionist.username, "wrong-password").status_code == 200
        # The fifth failure reaches the limit: from here even the right password waits.
        assert _sign_in(client, receptionist.username, "wrong-password").status_code == 429
        assert _sign_in(client, receptionist.username, PASSWORD).status_code == 429
    with time_machine.travel(start + dt.timedelta(minutes=16), tick=False):
        response = _sign_in(client, receptionist.username, PASSWORD)
        assert response.status_code == 302
        assert response["Location"] == "/admin/"


@override_settings(AXES_COOLOFF_TIME=dt.timedelta(minutes=1))
def test_attempts_during_the_cool_off_do_not_extend_it(client, receptionist):
    locked_at = timezone.now()
    with time_machine.travel(locked_at, tick=False):
        for _ in range(5):
            _sign_in(client, receptionist.username, "wrong-password")
        assert _sign_in(client, receptionist.username, PASSWORD).status_code == 429
    # One attempt every few seconds, wrong and right, all refused and none restarting the clock.
    for seconds, password in ((20, "wrong-password"), (30, PASSWORD), (45, "wrong-password"), (59, "wrong-password")):
        with time_machine.travel(locked_at + dt.timedelta(seconds=seconds), tick=False):
            assert _sign_in(client, receptionist.username, password).status_code == 429
    with time_machine.travel(locked_at + dt.timedelta(seconds=61), tick=False):
        response = _sign_in(client, receptionist.username, PASSWORD)
        assert response.status_code == 302
        assert response["Location"] == "/admin/"


def test_throttling_one_username_leaves_other_staff_alone(client, receptionist, owner):
    for _ in range(6):
        _sign_in(client, receptionist.username, "wrong-password")
    assert _sign_in(client, owner.username).status_code == 302


def test_sign_in_sign_out_and_failures_are_audited(client, receptionist):
    _sign_in(client, receptionist.username, "wrong-password")
    _sign_in(client, receptionist.username)
    client.post("/admin/logout/")
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == [AuditAction.LOGIN_FAILED, AuditAction.LOGIN, AuditAction.LOGOUT]
    failed = AuditEvent.objects.get(action=AuditAction.LOGIN_FAILED)
    assert failed.extra == {"username": receptionist.username}
    assert "password" not in str(failed.extra)


# --- session limits ---------------------------------------------------------------------


def test_inactive_session_expires_after_the_clinics_idle_limit(client, owner):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert _sign_in(client, owner.username).status_code == 302
        assert client.get("/admin/").status_code == 200
    with time_machine.travel(start + dt.timedelta(minutes=29), tick=False):
        assert client.get("/admin/").status_code == 200
    with time_machine.travel(start + dt.timedelta(minutes=29 + 31), tick=False):
        response = client.get("/admin/")
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
        # Signed out for good: the next request is anonymous too.
        assert client.get("/admin/").status_code == 302


def test_expired_session_on_the_api_is_401_and_nothing_else(client, owner):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        _sign_in(client, owner.username)
        assert client.get("/api/v1/rooms/").status_code == 200
    with time_machine.travel(start + dt.timedelta(minutes=45), tick=False):
        response = client.get("/api/v1/rooms/")
        assert response.status_code == 401
        assert response.json()["title"] == "Not authenticated"


def test_active_session_still_ends_at_the_absolute_maximum(client, owner):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        _sign_in(client, owner.username)
    for minutes in range(20, 12 * 60, 20):  # busy all day, never idle for long
        with time_machine.travel(start + dt.timedelta(minutes=minutes), tick=False):
            assert client.get("/admin/").status_code == 200
    with time_machine.travel(start + dt.timedelta(hours=12, minutes=5), tick=False):
        assert client.get("/admin/").status_code == 302


def test_idle_limit_follows_the_clinic_setting(client, clinic, owner):
    clinic.session_idle_minutes = 10
    clinic.save()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        _sign_in(client, owner.username)
    with time_machine.travel(start + dt.timedelta(minutes=11), tick=False):
        assert client.get("/admin/").status_code == 302


# --- two-factor ---------------------------------------------------------------------------


@pytest.fixture
def strict_clinic():
    return ClinicFactory(slug="strict", two_factor_required=True)


@pytest.mark.parametrize("role", [Role.OWNER, Role.THERAPIST, Role.RECEPTIONIST])
def test_every_role_must_set_up_two_factor_before_using_the_admin(client, strict_clinic, role):
    user = staff(strict_clinic, role)
    _sign_in(client, user.username)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/account/two-factor/verify/")
    assert client.get(response["Location"]).status_code == 302  # no device yet: on to setup
    assert client.get("/api/v1/rooms/").status_code == 403


def test_a_receptionist_in_a_two_factor_clinic_is_asked_for_a_second_factor(client, strict_clinic):
    user = staff(strict_clinic, Role.RECEPTIONIST)
    _sign_in(client, user.username)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/account/two-factor/verify/")
    assert client.get("/api/v1/patients/").status_code == 403


def test_a_receptionist_enrols_a_device_and_then_works(client, strict_clinic):
    user = staff(strict_clinic, Role.RECEPTIONIST)
    _sign_in(client, user.username)
    client.get("/account/two-factor/setup/")
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    done = client.post("/account/two-factor/setup/", {"token": _current_code(device)})
    assert len(done.context["codes"]) == 10
    assert client.get("/admin/").status_code == 200
    assert client.get("/api/v1/patients/").status_code == 200


def test_a_receptionist_of_a_clinic_without_two_factor_is_not_asked(client, clinic, receptionist):
    assert clinic.two_factor_required is False
    _sign_in(client, receptionist.username)
    assert client.get("/admin/").status_code == 200


def test_enrolling_a_totp_device_verifies_the_session_and_issues_recovery_codes(client, strict_clinic):
    user = staff(strict_clinic, Role.THERAPIST)
    _sign_in(client, user.username)
    page = client.get("/account/two-factor/setup/")
    assert page.status_code == 200
    assert b"<svg" in page.content
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert client.post("/account/two-factor/setup/", {"token": "000000"}).status_code == 200
    # django-otp makes a device wait after a wrong code; a person retries a few seconds later.
    with time_machine.travel(start + dt.timedelta(seconds=5), tick=False):
        device.refresh_from_db()
        done = client.post("/account/two-factor/setup/", {"token": _current_code(device)})
    assert done.status_code == 200
    assert len(done.context["codes"]) == 10
    assert client.get("/admin/").status_code == 200


def test_next_sign_in_needs_a_code_and_a_recovery_code_works_once(client, strict_clinic):
    user = staff(strict_clinic, Role.OWNER)
    _sign_in(client, user.username)
    client.get("/account/two-factor/setup/")
    device = TOTPDevice.objects.get(user=user)
    codes = client.post("/account/two-factor/setup/", {"token": _current_code(device)}).context["codes"]
    client.post("/admin/logout/")

    _sign_in(client, user.username)
    assert client.get("/admin/").status_code == 302
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert client.post("/account/two-factor/verify/", {"token": "123"}).status_code == 200
    with time_machine.travel(start + dt.timedelta(seconds=5), tick=False):
        response = client.post("/account/two-factor/verify/", {"token": codes[0], "next": "/admin/"})
        assert response.status_code == 302
        assert client.get("/admin/").status_code == 200
        client.post("/admin/logout/")

    _sign_in(client, user.username)
    assert client.post("/account/two-factor/verify/", {"token": codes[0]}).status_code == 200  # used up


def test_pages_carry_a_content_security_policy(client):
    response = client.get("/admin/login/")
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy
