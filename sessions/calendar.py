"""A practitioner's iCalendar feed (RFC 5545), built with `icalendar`.

Privacy: the feed sits behind a secret URL that calendar apps fetch without logging in and
often sync to third-party servers, so events carry the service, room and location only,
never the patient's name or anything clinical. UIDs are stable per appointment; SEQUENCE
is the appointment's `sequence`, bumped on every move or status change; cancelled
appointments stay in the feed as STATUS:CANCELLED for CANCELLED_KEPT_FOR, so subscribed
calendars remove them instead of keeping a stale event.
"""

from __future__ import annotations

import datetime as dt
from email.utils import parseaddr
from urllib.parse import urlsplit

import icalendar
from django.conf import settings
from django.utils import timezone

from sessions.models import Appointment, AppointmentStatus, CalendarFeed

PAST_WINDOW = dt.timedelta(days=60)
FUTURE_WINDOW = dt.timedelta(days=365)
CANCELLED_KEPT_FOR = dt.timedelta(days=30)

_STATUS = {
    AppointmentStatus.BOOKED: "TENTATIVE",
    AppointmentStatus.CONFIRMED: "CONFIRMED",
    AppointmentStatus.ARRIVED: "CONFIRMED",
    AppointmentStatus.COMPLETED: "CONFIRMED",
    AppointmentStatus.NO_SHOW: "CANCELLED",
    AppointmentStatus.CANCELLED: "CANCELLED",
}


def appointment_uid(appointment_id: int) -> str:
    host = urlsplit(settings.PUBLIC_BASE_URL).hostname or "clinic.invalid"
    return f"appointment-{appointment_id}@{host}"


def feed_appointments(feed: CalendarFeed, *, now: dt.datetime):
    rows = (
        Appointment.objects.filter(
            practitioner_id=feed.practitioner_id,
            start__gte=now - PAST_WINDOW,
            start__lt=now + FUTURE_WINDOW,
        )
        .exclude(status=AppointmentStatus.CANCELLED, cancelled_at__lt=now - CANCELLED_KEPT_FOR)
        .select_related("service", "room", "location")
        .order_by("start", "id")
    )
    return rows


def calendar_render(feed: CalendarFeed) -> bytes:
    now = timezone.now()
    practitioner = feed.practitioner
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Clinic back end//Booking//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", f"{practitioner.display_name} ({practitioner.clinic.name})")
    calendar.add("x-wr-timezone", practitioner.clinic.time_zone)
    for appointment in feed_appointments(feed, now=now):
        event = icalendar.Event()
        event.add("uid", appointment_uid(appointment.pk))
        event.add("dtstamp", now)
        event.add("last-modified", appointment.updated_at)
        event.add("dtstart", appointment.start.astimezone(dt.UTC))
        event.add("dtend", appointment.end.astimezone(dt.UTC))
        event.add("sequence", appointment.sequence)
        event.add("status", _STATUS[appointment.status])
        event.add("summary", appointment.service.name)
        where = [x.name for x in (appointment.room, appointment.location) if x is not None]
        if where:
            event.add("location", ", ".join(where))
        event.add("transp", "TRANSPARENT" if appointment.status == AppointmentStatus.CANCELLED else "OPAQUE")
        calendar.add_component(event)
    return calendar.to_ical()


def appointment_invite(appointment: Appointment, *, location, cancel: bool, to_email: str) -> bytes:
    """The .ics attached to a patient's booking confirmation (METHOD:REQUEST) or cancellation
    notice (METHOD:CANCEL). The UID is the appointment's, stable across moves; SEQUENCE is its
    `sequence`, bumped on every move and status change, so a calendar app replaces the event
    it holds instead of adding a second one. No service name or anything clinical: the
    summary names the clinic and the practitioner only."""
    clinic = appointment.clinic
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Clinic back end//Booking//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancel else "REQUEST")
    event = icalendar.Event()
    event.add("uid", appointment_uid(appointment.pk))
    event.add("dtstamp", timezone.now())
    event.add("dtstart", appointment.start.astimezone(dt.UTC))
    event.add("dtend", appointment.end.astimezone(dt.UTC))
    event.add("sequence", appointment.sequence)
    event.add("status", "CANCELLED" if cancel else "CONFIRMED")
    event.add("summary", f"Appointment at {clinic.name} with {appointment.practitioner.display_name}")
    if location is not None:
        event.add("location", ", ".join(part for part in (location.name, location.address_text) if part))
    phone = f"Phone: {clinic.phone}" if clinic.phone else ""
    details = [part for part in (getattr(location, "directions", ""), phone) if part]
    if details:
        event.add("description", "\n".join(details))
    organizer = icalendar.vCalAddress(f"mailto:{clinic.email or parseaddr(settings.DEFAULT_FROM_EMAIL)[1]}")
    organizer.params["cn"] = icalendar.vText(clinic.name)
    event.add("organizer", organizer)
    if to_email:
        attendee = icalendar.vCalAddress(f"mailto:{to_email}")
        attendee.params["role"] = icalendar.vText("REQ-PARTICIPANT")
        event.add("attendee", attendee)
    calendar.add_component(event)
    return calendar.to_ical()
