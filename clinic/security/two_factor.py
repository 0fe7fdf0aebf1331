"""TOTP enrolment and verification for staff, with one-time recovery codes.

Built on django-otp: a TOTPDevice per user (confirmed once the user types a valid
code) and a StaticDevice holding ten recovery codes. Failed codes are throttled by
django-otp's own per-device back-off.
"""

from __future__ import annotations

import secrets

import segno
from django import forms
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp import match_token
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from clinic.models import AuditAction
from clinic.security.audit import audit_record

RECOVERY_CODES = 10


class TokenForm(forms.Form):
    token = forms.CharField(
        label="Code",
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
        help_text="The 6-digit code from your authenticator app, or one of your recovery codes.",
    )


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/admin/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return "/admin/"
    return target


def _confirmed_totp(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


@transaction.atomic
def recovery_codes_issue(*, user) -> list[str]:
    """Replace the user's recovery codes with fresh ones; return them (shown once)."""
    device, _ = StaticDevice.objects.get_or_create(user=user, name="Recovery codes")
    device.token_set.all().delete()
    codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


@login_required
@require_http_methods(["GET", "POST"])
def two_factor_setup(request):
    if _confirmed_totp(request.user) and not request.user.is_verified():
        return redirect(f"/account/two-factor/verify/?next={_next_url(request)}")
    device = TOTPDevice.objects.filter(user=request.user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=request.user, name="Authenticator app", confirmed=False)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"].strip()):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            codes = recovery_codes_issue(user=request.user)
            audit_record(action=AuditAction.CHANGE, obj=request.user, request=request, via="admin",
                         extra={"two_factor": "enrolled"})  # fmt: skip
            return render(
                request, "clinic/two_factor/recovery_codes.html", {"codes": codes, "next": _next_url(request)}
            )
        form.add_error("token", "That code did not match. Check the time on your phone and try the newest code.")
    qr_svg = segno.make(device.config_url, error="m").svg_inline(scale=5)
    context = {"form": form, "qr_svg": qr_svg, "secret": device.bin_key.hex(), "next": _next_url(request),
               "title": "Set up two-factor sign-in"}  # fmt: skip
    return render(request, "clinic/two_factor/setup.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def two_factor_verify(request):
    if _confirmed_totp(request.user) is None:
        return redirect(f"/account/two-factor/setup/?next={_next_url(request)}")
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = match_token(request.user, form.cleaned_data["token"].strip())
        if device is not None:
            otp_login(request, device)
            return redirect(_next_url(request))
        form.add_error("token", "That code did not match, or too many codes were tried: wait a moment and retry.")
    return render(request, "clinic/two_factor/verify.html",
                  {"form": form, "next": _next_url(request), "title": "Two-factor sign-in"})  # fmt: skip


@login_required
@require_http_methods(["POST"])
def two_factor_recovery_codes(request):
    if not request.user.is_verified():
        return redirect("/account/two-factor/verify/")
    codes = recovery_codes_issue(user=request.user)
    return render(request, "clinic/two_factor/recovery_codes.html", {"codes": codes, "next": "/admin/"})
