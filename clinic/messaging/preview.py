"""What the message log shows staff about one message: the text the recipient gets (or got)
and, in plain words, why a message was held back, skipped, cancelled or superseded."""

from __future__ import annotations

from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.utils import timezone

from clinic.messaging.render import message_attachments, message_render
from clinic.models import Message, MessageStatus

# Reasons the triggers and the sender record, explained for the front desk. A reason not
# listed is shown as recorded.
REASONS = {
    "superseded by a newer note": (
        "A newer signed note recommended re-booking: its reminders replaced this one, so the patient "
        "gets one re-booking reminder, not one per note."
    ),
    "superseded while being sent": "A newer re-booking reminder took this one's place while it was being sent.",
    "patient has re-booked": "The patient booked a visit, so the re-booking reminder is not needed.",
    "appointment moved": "The appointment was moved: messages for the new time replaced this one.",
    "appointment cancelled": "The appointment was cancelled, so its reminders are not sent.",
    "appointment confirmed; the clinic sends no more reminders": (
        "The appointment is confirmed and the clinic's reminder policy stops later reminders once confirmed."
    ),
    "patient opted out": "The patient opted out of this channel (STOP reply or unsubscribe link).",
    "intake submitted": "The patient already sent the intake form.",
    "past its cut-off time": "It could not go out before its cut-off (for example the appointment's start).",
    "quiet hours last past its cut-off time": "The clinic's quiet hours lasted until after its cut-off.",
    "no email consent": "The patient has not agreed to email, and no other channel could be used.",
    "no SMS consent": "The patient has not agreed to SMS, and no other channel could be used.",
    "no email address": "The patient has no email address, and no other channel could be used.",
    "no mobile phone number": "The patient has no mobile number, and no other channel could be used.",
    "patient is archived": "The patient's record is archived.",
    "provider refused it": "The email or SMS provider refused it; retrying cannot help (see the error).",
}


def message_explained(message: Message) -> str:
    """One or two sentences: where the message stands and why."""
    tz = message.clinic.tz
    when = lambda value: timezone.localtime(value, tz).strftime("%Y-%m-%d %H:%M %Z")  # noqa: E731
    if message.status == MessageStatus.SENT:
        return f"Sent {when(message.sent_at)} to {message.recipient}." if message.sent_at else "Sent."
    if message.status == MessageStatus.SCHEDULED:
        return (
            f"Due {when(message.due_at)}. When due it is checked again (still applies, consent, quiet hours) "
            "before it goes out."
        )
    if message.status == MessageStatus.SENDING:
        return "Being sent now."
    label = message.get_status_display()
    explained = REASONS.get(message.reason, message.reason or "no reason recorded")
    if message.reason.startswith("gave up"):
        explained = f"Delivery kept failing ({message.reason}); see the last error. It can be sent again."
    return f"{label}: {explained}"


def message_preview(message: Message) -> tuple[str, str, list[str]]:
    """(subject, body, attachment names): the recorded text of a sent message, else what the
    recipient would get if it went out now."""
    if message.status == MessageStatus.SENT and message.body:
        return message.subject, message.body, []
    try:
        subject, body = message_render(message)
        names = [attachment.filename for attachment in message_attachments(message)]
    except (TemplateSyntaxError, TemplateDoesNotExist, ValueError, KeyError, TypeError, AttributeError) as exc:
        return "", f"(This message cannot be rendered: {exc})", []
    return subject, body, names
