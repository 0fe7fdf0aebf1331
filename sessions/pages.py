"""Pages reached without signing in: a practitioner's secret calendar feed, the patient's
page for a waitlist offer (signed link from the offer message), and the patient's confirm
and "I can't come" pages (signed links from reminder emails). Mounted by public_urls.py."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from sessions import services
from sessions.calendar import calendar_render
from sessions.messages import appointment_location
from sessions.models import AppointmentStatus, CalendarFeed, ConfirmedVia
from sessions.services.confirmation import (
    appointment_from_reply_token,
    appointment_patient_confirm,
    appointment_patient_decline,
)
from sessions.services.placement import InvalidTransitionError


@require_GET
def calendar_feed(request, token: str):
    """Public: the feed for a secret token. Unknown or revoked tokens are 404."""
    feed = (
        CalendarFeed.objects.filter(digest=services.calendar_token_digest(token), revoked_at__isnull=True)
        .filter(Q(practitioner__is_active=True))
        .select_related("practitioner__clinic")
        .first()
    )
    if feed is None:
        raise Http404
    response = HttpResponse(calendar_render(feed), content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    response["X-Robots-Tag"] = "noindex"
    return response


@require_http_methods(["GET", "POST"])
def waitlist_offer_page(request, token: str):
    """Public: the patient's page for a waitlist offer (signed link from the offer message).

    GET shows the slot and an accept button; POST accepts (first to accept gets it)."""
    offer = services.waitlist_offer_from_token(token)
    if offer is None:
        raise Http404
    outcome = None
    if request.method == "POST":
        offer = services.waitlist_offer_accept(offer=offer)
        outcome = offer.status
    tz = offer.clinic.tz
    context = {
        "clinic": offer.clinic,
        "practitioner": offer.practitioner.display_name,
        "service": offer.entry.service.name,
        "start": offer.start.astimezone(tz),
        "expires_at": offer.expires_at.astimezone(tz),
        "expired": offer.expires_at <= timezone.now(),
        "status": offer.status,
        "outcome": outcome,
    }
    with timezone.override(tz):
        response = render(request, "sessions/waitlist_offer.html", context)
    response["X-Robots-Tag"] = "noindex"
    response["Cache-Control"] = "no-store"
    return response


def _patient_page(request, template: str, context: dict, status: int = 200):
    # Times in the clinic's zone: the date and time filters convert to the active zone.
    clinic = context.get("clinic")
    with timezone.override(clinic.tz if clinic else timezone.get_default_timezone()):
        response = render(request, template, context, status=status)
    response["X-Robots-Tag"] = "noindex"
    response["Cache-Control"] = "no-store"
    # Keeps the token in the URL from leaking to other sites; "no-referrer" would make the
    # browser send "Origin: null" with the form, which CSRF checking refuses.
    response["Referrer-Policy"] = "same-origin"
    return response


def _link_refused(request, status: int):
    # Nothing about the appointment: not whose, when, or even whether it exists.
    return _patient_page(request, "sessions/visit_link_gone.html", {"status": status}, status=status)


def _visit_context(appointment, token: str) -> dict:
    clinic = appointment.clinic
    start = appointment.start.astimezone(clinic.tz)
    notice = clinic.cancellation_notice_hours
    return {
        "clinic": clinic,
        "token": token,
        "practitioner": appointment.practitioner.display_name,
        "start": start,
        "zone": start.tzname(),
        "location": appointment_location(appointment),
        "confirmed": appointment.status == AppointmentStatus.CONFIRMED,
        "notice_hours": notice,
        "late": appointment.start - timezone.now() < dt.timedelta(hours=notice),
    }


@require_http_methods(["GET", "POST"])
def appointment_reply_page(request, token: str):
    """Public: the visit and a "Confirm" button (a GET never changes anything: mail scanners
    open links). POST confirms; a second POST changes nothing."""
    found = appointment_from_reply_token(token)
    if found.appointment is None:
        return _link_refused(request, found.status)
    outcome = ""
    if request.method == "POST":
        try:
            appointment_patient_confirm(appointment=found.appointment, via=ConfirmedVia.EMAIL_LINK)
        except InvalidTransitionError:
            return _link_refused(request, 410)
        found.appointment.refresh_from_db()
        outcome = "confirmed"
    context = _visit_context(found.appointment, token) | {"outcome": outcome}
    return _patient_page(request, "sessions/visit_reply.html", context)


@require_http_methods(["GET", "POST"])
def appointment_decline_page(request, token: str):
    """Public: "I can't come". GET explains (and names the late-cancellation policy when it
    applies); POST cancels the visit for the patient and offers the time to the waitlist."""
    found = appointment_from_reply_token(token)
    if found.appointment is None:
        return _link_refused(request, found.status)
    context = _visit_context(found.appointment, token)
    if request.method == "POST":
        try:
            cancelled = appointment_patient_decline(appointment=found.appointment, via=ConfirmedVia.EMAIL_LINK)
        except InvalidTransitionError:
            return _link_refused(request, 410)
        context |= {"outcome": "cancelled", "late": cancelled.late_cancellation}
    return _patient_page(request, "sessions/visit_decline.html", context)
