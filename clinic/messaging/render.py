"""Rendering a message: the clinic's own template for its kind and channel, else the default
in clinic/templates/messages/.

 Template context (every kind; empty where it does not apply). No clinical detail:
no service, no treatment, no note content.

    patient_name       preferred name, else given name
    clinic_name, clinic_phone, clinic_email
    practitioner_name  appointment kinds and the intake nudge
    appointment_when   e.g. "Tuesday 5 May at 2:00 PM" in the clinic's time zone
    appointment_date, appointment_time
    link               intake, waitlist offer or booking link
    expires_when       when a link or offer runs out (clinic time)
    unsubscribe_url    email only

The appointment keys come from the providers domains register (`context_provider_register`).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path

from django.template import Context, Template

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
        "unsubscribe_url": unsubscribe_url(patient_id=patient.pk) if message.channel == MessageChannel.EMAIL else "",
    }
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
    custom = _clinic_template(message)
    if custom:
        subject = _clinic_template_compile(custom[0]).render(context) if custom[0] else ""
        body = _clinic_template_compile(custom[1]).render(context)
    else:
        body = _default_template(f"{message.kind}.{message.channel}.txt").render(context)
        subject = ""
        if message.channel == MessageChannel.EMAIL:
            subject = _default_template(f"{message.kind}.subject.txt").render(context)
    return " ".join(subject.split())[:200], body.strip() + "\n"


# --- the sweeper ----------------------------------------------------------------------
