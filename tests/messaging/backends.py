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
