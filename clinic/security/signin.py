"""Staff sign-in safeguards: session timeouts, two-factor enforcement, sign-in audit.

- Inactivity and absolute session limits come from the user's clinics (the strictest
  wins); an expired session is signed out and gets 401 (API) or the sign-in page.
- Every staff member (owner, therapist, receptionist) of a clinic with
  `two_factor_required` must verify a TOTP device (or a recovery code) before anything
  but the two-factor pages.
"""

from __future__ import annotations

import datetime as dt
import time

from axes.backends import AxesStandaloneBackend
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from clinic.models import AuditAction, Clinic, Membership
from clinic.security.audit import audit_record

SESSION_STARTED = "clinic_session_started"
SESSION_SEEN = "clinic_session_seen"
DEFAULT_IDLE = dt.timedelta(minutes=30)
DEFAULT_MAX = dt.timedelta(hours=12)
# Writing the session on every request would turn every read into a write; a minute
# of slack on a 30-minute limit is harmless.
TOUCH_EVERY_SECONDS = 60

EXEMPT_PREFIXES = ("/static/", "/healthz", "/account/two-factor/", "/admin/logout/", "/admin/login/")


def _is_api(request) -> bool:
    return request.path.startswith(("/api/", "/fhir/"))


def _problem(status: int, title: str, detail: str) -> JsonResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, "errors": {}}
    return JsonResponse(body, status=status, content_type="application/problem+json")


def active_memberships(request) -> list[Membership]:
    """The signed-in user's active memberships with their clinics, read once per request:
    the session limits, the two-factor rule and the clinic the API acts in all use them."""
    django_request = getattr(request, "_request", request)
    user = request.user
    cached = getattr(django_request, "_clinic_memberships", None)
    if cached is None or cached[0] != user.pk:
        cached = (user.pk, list(Membership.objects.filter(user=user, is_active=True).select_related("clinic")))
        django_request._clinic_memberships = cached
    return cached[1]


def session_limits(user, memberships: list[Membership] | None = None) -> tuple[dt.timedelta, dt.timedelta]:
    """The strictest idle and absolute limits of the user's clinics."""
    if memberships is None:
        memberships = list(Membership.objects.filter(user=user, is_active=True).select_related("clinic"))
    idle = min((m.clinic.session_idle_minutes for m in memberships), default=None)
    longest = min((m.clinic.session_max_hours for m in memberships), default=None)
    return (
        dt.timedelta(minutes=idle) if idle else DEFAULT_IDLE,
        dt.timedelta(hours=longest) if longest else DEFAULT_MAX,
    )


def needs_two_factor(user, memberships: list[Membership] | None = None) -> bool:
    if memberships is None:
        memberships = list(Membership.objects.filter(user=user, is_active=True).select_related("clinic"))
    # Every role: a receptionist's session reaches every patient's contact details and bookings.
    return any(m.clinic.two_factor_required for m in memberships)


class SessionTimeoutMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            now = time.time()
            session = request.session
            started = session.get(SESSION_STARTED)
            seen = session.get(SESSION_SEEN)
            if started is None:
                session[SESSION_STARTED] = session[SESSION_SEEN] = now
            else:
                idle, maximum = session_limits(user, active_memberships(request))
                if now - seen > idle.total_seconds() or now - started > maximum.total_seconds():
                    logout(request)
                    if _is_api(request):
                        return _problem(401, "Not authenticated", "Your session has expired; sign in again.")
                    login = reverse("admin:login")
                    return redirect(f"{login}?{urlencode({'next': request.get_full_path()})}")
                if now - seen > TOUCH_EVERY_SECONDS:
                    session[SESSION_SEEN] = now
        return self.get_response(request)


class TwoFactorRequiredMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(EXEMPT_PREFIXES)
            and not user.is_verified()
            and needs_two_factor(user, active_memberships(request))
        ):
            if _is_api(request):
                return _problem(403, "Permission denied", "Two-factor verification is required for this account.")
            target = reverse("two-factor-verify")
            return redirect(f"{target}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)


# --- sign-in audit --------------------------------------------------------------------
# Receivers only record; the audit service does the writing.


def _single_clinic(user):
    clinics = list(Membership.objects.filter(user=user, is_active=True).values_list("clinic", flat=True)[:2])
    if len(clinics) == 1:
        return Clinic.objects.get(pk=clinics[0])
    return None


@receiver(user_logged_in, dispatch_uid="clinic.audit_login")
def _audit_login(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_STARTED] = request.session[SESSION_SEEN] = time.time()
    audit_record(action=AuditAction.LOGIN, clinic=_single_clinic(user), actor=user, request=request, via="admin")


@receiver(user_logged_out, dispatch_uid="clinic.audit_logout")
def _audit_logout(sender, request, user, **kwargs):
    if user is not None:
        audit_record(action=AuditAction.LOGOUT, clinic=_single_clinic(user), actor=user, request=request, via="admin")


@receiver(user_login_failed, dispatch_uid="clinic.audit_login_failed")
def _audit_login_failed(sender, credentials, request=None, **kwargs):
    attempted = str((credentials or {}).get("username", ""))[:150]
    audit_record(action=AuditAction.LOGIN_FAILED, request=request, via="admin", extra={"username": attempted})


# --- sign-in throttling -----------------------------------------------------------------


class ThrottledSignInBackend(AxesStandaloneBackend):
    """django-axes' check, skipped when authenticate() is called without a request.

    Every web sign-in (admin, DRF) passes the request, so all of them are throttled;
    code that authenticates programmatically (tests, shell) has no client to throttle.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
