"""Email backends standing in for an SMTP server that is down or refuses a recipient
(the edge of the system: everything up to the backend call is the real code)."""

from __future__ import annotations

import smtplib

from django.core.mail.backends.base import BaseEmailBackend


class DownEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


class RefusingEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise smtplib.SMTPRecipientsRefused({"x@example.com": (550, b"5.1.1 no such user")})


class PickyEmailBackend(BaseEmailBackend):
    """Refuses addresses starting with 'refuse', breaks (a bug, not an SMTP error) on
    addresses starting with 'crash', and keeps the rest in mail.outbox like locmem."""

    def send_messages(self, email_messages):
        from django.core import mail

        for message in email_messages:
            [to] = message.to
            if to.startswith("refuse"):
                raise smtplib.SMTPRecipientsRefused({to: (550, b"5.1.1 no such user")})
            if to.startswith("crash"):
                raise RuntimeError("the backend has a bug")
            message.message()
            mail.outbox.append(message)
        return len(email_messages)


class HookEmailBackend(BaseEmailBackend):
    """locmem, calling `HookEmailBackend.hook(message)` after each send (set by the test),
    e.g. to change the world between two messages of a chunk."""

    hook = None

    def send_messages(self, email_messages):
        from django.core import mail

        for message in email_messages:
            message.message()
            mail.outbox.append(message)
            if HookEmailBackend.hook:
                HookEmailBackend.hook(message)
        return len(email_messages)
