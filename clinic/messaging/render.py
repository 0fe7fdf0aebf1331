"""Rendering a message: the clinic's own template for its kind and channel, else the default
in clinic/templates/messages/.

 Template context (every kind; empty where it does not apply). No clinical detail:
no service, no treatment, no note content.

    patient_name       preferred name, else given name
    clinic_name, clinic_phone, clinic_email
    practitioner_name  appointment kinds and the intake nudge
    appointment_when   e.g. "Tuesday 5 May at 2:00 PM" in the clinic's time zone
    appointment_date, appointment_time
    appointment_zone   the zone's short name at that time, e.g. "EDT"
    location_name, location_address, location_directions
                       where the visit is (appointment kinds, intake nudge, waitlist offer)
    confirm_url, decline_url
                       the patient's signed "confirm" and "I can't come" links (appointment
                       confirmation and reminders, email; empty once confirmed for confirm_url)
    sms_reply_hint     SMS reminders: "Reply Y to confirm or N if you can't come."
    link               intake, waitlist offer or booking link; a staff alert's review link
    expires_when       when a link or offer runs out (clinic time)
    unsubscribe_url    email to patients only

The appointment keys come from the providers domains register (`context_provider_register`);
email attachments (the booking's .ics) from `attachment_provider_register`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.template import Context, Template
from django.urls import reverse

from clinic.messaging.channels import Attachment
from clinic.messaging.outbox import unsubscribe_url
from clinic.models import (
    Message,
    MessageChannel,
    MessageTemplate,
)
from clinic.models.messaging import TEXT_ENGINE

# --- rendering ------------------------------------------------------------------------

DEFAULT_TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "messages"


def when_text(value: dt.datetime | None, tz) -> tuple[str, str, str]:
    if value is None:
        return "", "", ""
    local = value.astimezone(tz)
    date = f"{local:%A} {local.day} {local:%B}"
    clock = local.strftime("%I:%M %p").lstrip("0")
    return f"{date} at {clock}", date, clock


ContextProvider = Callable[[Message], dict]
_CONTEXT_PROVIDERS: list[ContextProvider] = []


def context_provider_register(provider: ContextProvider) -> None:
    """Add template context from a domain (e.g. the appointment's time and practitioner):
    `provider(message)` returns the keys it fills, {} when the message is not its concern."""
    if provider not in _CONTEXT_PROVIDERS:
        _CONTEXT_PROVIDERS.append(provider)


def staff_alert_url(message: Message) -> str:
    return settings.PUBLIC_BASE_URL + reverse("staff-alert-open", args=[message.pk])


def message_unsubscribe_url(message: Message) -> str:
    """The patient's unsubscribe link of an email; '' for SMS and for staff alerts."""
    if message.channel != MessageChannel.EMAIL or message.to_user_id:
        return ""
    return unsubscribe_url(patient_id=message.patient_id)


AttachmentProvider = Callable[[Message], list[Attachment]]
_ATTACHMENT_PROVIDERS: list[AttachmentProvider] = []


def attachment_provider_register(provider: AttachmentProvider) -> None:
    """Add email attachments from a domain (e.g. a booking's .ics): `provider(message)`
    returns the files for that message, [] when it is not its concern."""
    if provider not in _ATTACHMENT_PROVIDERS:
        _ATTACHMENT_PROVIDERS.append(provider)


def message_attachments(message: Message) -> tuple[Attachment, ...]:
    if message.channel != MessageChannel.EMAIL:
        return ()
    return tuple(item for provider in _ATTACHMENT_PROVIDERS for item in provider(message))


def message_context(message: Message) -> dict:
    clinic, patient = message.clinic, message.patient
    tz = clinic.tz
    expires = message.context.get("expires")
    context = {
        "patient_name": patient.preferred_name or patient.given_name,
        "clinic_name": clinic.name,
        "clinic_phone": clinic.phone,
        "clinic_email": clinic.email,
        "practitioner_name": "",
        "appointment_when": "",
        "appointment_date": "",
        "appointment_time": "",
        "link": message.context.get("link", ""),
        "expires_when": when_text(dt.datetime.fromisoformat(expires), tz)[0] if expires else "",
        "appointment_zone": "",
        "location_name": "",
        "location_address": "",
        "location_directions": "",
        "confirm_url": "",
        "decline_url": "",
        "sms_reply_hint": "",
        "unsubscribe_url": message_unsubscribe_url(message),
    }
    if message.to_user_id:
        # A staff alert: its own link only, no domain keys (nothing about the patient's visit).
        context["link"] = staff_alert_url(message)
        return context
    for provider in _CONTEXT_PROVIDERS:
        context.update(provider(message))
    return context


@functools.cache
def _default_template(name: str) -> Template:
    # Compiled once per process: the defaults ship with the code.
    return Template((DEFAULT_TEMPLATES / name).read_text(), engine=TEXT_ENGINE)


@functools.lru_cache(maxsize=256)
def _clinic_template_compile(source: str) -> Template:
    # Keyed by the source itself, so an edited template is simply a new entry.
    return Template(source, engine=TEXT_ENGINE)


def _clinic_template(message: Message) -> tuple[str, str] | None:
    """(subject, body) of the clinic's own template; the sender sets it from its clinic setup."""
    if hasattr(message, "template_body"):
        return None if message.template_body is None else (message.template_subject, message.template_body)
    found = MessageTemplate.objects.filter(clinic_id=message.clinic_id, kind=message.kind, channel=message.channel)
    return found.values_list("subject", "body").first()


def message_render(message: Message) -> tuple[str, str]:
    """(subject, body) from the clinic's template, else the default in templates/messages/."""
    context = Context(message_context(message), autoescape=False)
    # A staff alert's wording is fixed: it must carry no clinical detail, whatever a clinic writes.
    custom = None if message.to_user_id else _clinic_template(message)
    if custom:
        subject = _clinic_template_compile(custom[0]).render(context) if custom[0] else ""
        body = _clinic_template_compile(custom[1]).render(context)
    else:
        body = _default_template(f"{message.kind}.{message.channel}.txt").render(context)
        subject = ""
        if message.channel == MessageChannel.EMAIL:
            subject = _default_template(f"{message.kind}.subject.txt").render(context)
    return " ".join(subject.split())[:200], body.strip() + "\n"
