"""Pages reached without signing in: a practitioner's secret calendar feed, and the patient's
page for a waitlist offer (signed link from the offer message). Mounted by public_urls.py."""

from __future__ import annotations

from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from sessions import services
from sessions.calendar import calendar_render
from sessions.models import CalendarFeed


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
