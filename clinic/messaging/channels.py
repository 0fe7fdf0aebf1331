"""Delivery channels: email through Django's email backends, SMS through a small provider interface.

A backend either returns the provider's message id or raises `TransientSendError`
(worth retrying: provider down, timeout, rate limit) or `PermanentSendError`
(retrying cannot help: bad number, rejected address). `idempotency_key` is the
message's claim-independent key; backends pass it to providers that accept one.
"""

from __future__ import annotations

import abc
import base64
import hashlib
import hmac
import json
import smtplib
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib import error as urlerror
from urllib import parse, request

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.message import make_msgid
from django.utils import timezone
from django.utils.module_loading import import_string


class SendError(Exception):
    pass


class TransientSendError(SendError):
    """Retry later: the provider or the network is down, slow or rate limiting."""


class PermanentSendError(SendError):
    """Retrying cannot help: the provider refused this message."""


# --- email ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mimetype: str


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    body: str
    idempotency_key: str
    unsubscribe_url: str  # '' for staff email (no consent to withdraw)
    attachments: tuple[Attachment, ...] = ()


def email_send(email: OutgoingEmail) -> str:
    """Send through the configured Django email backend; returns the Message-ID header."""
    message_id = make_msgid(idstring=email.idempotency_key.replace(":", "."), domain="clinic")
    headers = {
        "Message-ID": message_id,
        # Lets the delivery tests and anyone reading a log find the outbox row.
        "X-Clinic-Message-Key": email.idempotency_key,
    }
    if email.unsubscribe_url:
        headers["List-Unsubscribe"] = f"<{email.unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message = EmailMessage(
        subject=email.subject,
        body=email.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.to],
        headers=headers,
        connection=get_connection(fail_silently=False),
    )
    for attachment in email.attachments:
        message.attach(attachment.filename, attachment.content, attachment.mimetype)
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as exc:
        raise PermanentSendError(f"recipient refused: {exc}") from exc
    except smtplib.SMTPResponseException as exc:
        error = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
        if 500 <= exc.smtp_code < 600:
            raise PermanentSendError(error) from exc
        raise TransientSendError(error) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise TransientSendError(f"{type(exc).__name__}: {exc}") from exc
    return message_id


# --- SMS ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutgoingSms:
    to: str
    body: str
    idempotency_key: str


@dataclass(frozen=True)
class InboundSms:
    from_number: str
    body: str


class InboundRejectedError(Exception):
    """An inbound webhook call that did not come from the provider."""


class SmsBackend(abc.ABC):
    """Interface of an SMS provider."""

    @abc.abstractmethod
    def send(self, sms: OutgoingSms) -> str:
        """Send one SMS; return the provider's message id."""

    def parse_inbound(self, http_request) -> InboundSms:
        """Check that a webhook call comes from the provider and read it."""
        raise InboundRejectedError("this SMS backend receives no replies")


class ConsoleSmsBackend(SmsBackend):
    """Prints each SMS (development default)."""

    def send(self, sms: OutgoingSms) -> str:
        sys.stdout.write(f"SMS to {sms.to} [{sms.idempotency_key}]\n{sms.body}\n{'-' * 40}\n")
        sys.stdout.flush()
        return f"console-{uuid.uuid4().hex}"


class FileSmsBackend(SmsBackend):
    """Writes one JSON file per SMS into SMS_FILE_PATH (like Django's file email backend)."""

    def send(self, sms: OutgoingSms) -> str:
        folder = Path(settings.SMS_FILE_PATH)
        folder.mkdir(parents=True, exist_ok=True)
        provider_id = f"file-{uuid.uuid4().hex}"
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        record = {"to": sms.to, "body": sms.body, "key": sms.idempotency_key, "id": provider_id}
        # Written under a temporary name and renamed, so a reader never sees half a file.
        temporary = folder / f".{provider_id}.tmp"
        temporary.write_text(json.dumps(record))
        temporary.rename(folder / f"{stamp}-{provider_id}.json")
        return provider_id


class TwilioSmsBackend(SmsBackend):
    """Twilio's Programmable Messaging REST API over plain HTTPS (no SDK).

    Twilio's Messages API accepts no idempotency key, so a message whose request was
    in flight when a worker died can go out twice; the key is sent as the status
    callback's query string only to correlate delivery reports.
    """

    timeout = 10

    def __init__(self) -> None:
        self.account_sid = settings.TWILIO_ACCOUNT_SID
        self.auth_token = settings.TWILIO_AUTH_TOKEN
        self.from_number = settings.TWILIO_FROM_NUMBER
        self.api_base = settings.TWILIO_API_BASE.rstrip("/")
        if not (self.account_sid and self.auth_token and self.from_number):
            raise PermanentSendError("Twilio is not configured: set TWILIO_ACCOUNT_SID, AUTH_TOKEN and FROM_NUMBER")

    def send(self, sms: OutgoingSms) -> str:
        url = f"{self.api_base}/2010-04-01/Accounts/{parse.quote(self.account_sid)}/Messages.json"
        data = parse.urlencode({"To": sms.to, "From": self.from_number, "Body": sms.body}).encode()
        credentials = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        req = request.Request(  # noqa: S310 - the scheme comes from TWILIO_API_BASE, checked in settings
            url,
            data=data,
            method="POST",
            headers={
                "Authorization": f"Basic {credentials}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        try:
            # The scheme comes from TWILIO_API_BASE, which settings restrict to http(s).
            with request.urlopen(req, timeout=self.timeout) as response:  # noqa: S310  # nosec B310
                payload = json.loads(response.read() or b"{}")
        except urlerror.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            if exc.code == 429 or exc.code >= 500:
                raise TransientSendError(f"Twilio HTTP {exc.code}: {detail}") from exc
            raise PermanentSendError(f"Twilio HTTP {exc.code}: {detail}") from exc
        except (urlerror.URLError, TimeoutError, OSError) as exc:
            raise TransientSendError(f"Twilio unreachable: {exc}") from exc
        except ValueError as exc:
            raise TransientSendError(f"Twilio answered with invalid JSON: {exc}") from exc
        sid = payload.get("sid")
        if not sid:
            raise TransientSendError(f"Twilio answered without a message sid: {str(payload)[:200]}")
        return sid

    def signature(self, url: str, params: dict[str, str]) -> str:
        """X-Twilio-Signature: base64 HMAC-SHA1 of the URL followed by the sorted POST parameters."""
        payload = url + "".join(f"{key}{params[key]}" for key in sorted(params))
        digest = hmac.new(self.auth_token.encode(), payload.encode(), hashlib.sha1).digest()
        return base64.b64encode(digest).decode()

    def parse_inbound(self, http_request) -> InboundSms:
        params = {key: http_request.POST.get(key, "") for key in http_request.POST}
        url = settings.PUBLIC_BASE_URL + http_request.get_full_path()
        given = http_request.headers.get("X-Twilio-Signature", "")
        if not given or not hmac.compare_digest(given, self.signature(url, params)):
            raise InboundRejectedError("bad or missing X-Twilio-Signature")
        if params.get("AccountSid") != self.account_sid:
            raise InboundRejectedError("another Twilio account")
        return InboundSms(from_number=params.get("From", ""), body=params.get("Body", ""))


def sms_backend() -> SmsBackend:
    return import_string(settings.SMS_BACKEND)()
