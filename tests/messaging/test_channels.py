"""The SMS providers (Twilio adapter against a local fake HTTP server, never the network),
the STOP webhook and the unsubscribe link."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from django.utils import timezone

from clinic.messaging.channels import OutgoingSms, PermanentSendError, TransientSendError, TwilioSmsBackend
from clinic.messaging.outbox import unsubscribe_token
from clinic.messaging.sending import message_send, messages_claim_due
from clinic.models import Message, MessageStatus, OptOut
from sessions.messages import appointment_messages_sync
from tests.factories import AppointmentFactory, PatientFactory, ReminderPolicyFactory, sms_patient

pytestmark = pytest.mark.django_db


class FakeTwilio(BaseHTTPRequestHandler):
    """Answers like Twilio's Messages API; `server.answers` holds the (status, body) to give next."""

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        self.server.requests.append(
            {
                "path": self.path,
                "auth": self.headers["Authorization"],
                "form": {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()},
            }
        )
        status, body = self.server.answers.pop(0) if self.server.answers else (201, {"sid": "SM123"})
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def twilio(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeTwilio)
    server.requests, server.answers = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SMS_BACKEND = "clinic.messaging.channels.TwilioSmsBackend"
    settings.TWILIO_ACCOUNT_SID = "AC0123"
    settings.TWILIO_AUTH_TOKEN = "secret-token"
    settings.TWILIO_FROM_NUMBER = "+14165550100"
    settings.TWILIO_API_BASE = f"http://127.0.0.1:{server.server_port}"
    yield server
    server.shutdown()
    server.server_close()


def sms(to="+14165550199") -> OutgoingSms:
    return OutgoingSms(to=to, body="Hello", idempotency_key="msg-1")


def test_twilio_adapter_posts_the_message_with_basic_auth_and_returns_the_sid(twilio):
    assert TwilioSmsBackend().send(sms()) == "SM123"
    [request] = twilio.requests
    assert request["path"] == "/2010-04-01/Accounts/AC0123/Messages.json"
    assert request["auth"] == "Basic " + base64.b64encode(b"AC0123:secret-token").decode()
    assert request["form"] == {"To": "+14165550199", "From": "+14165550100", "Body": "Hello"}


@pytest.mark.parametrize(("status", "error"), [(500, TransientSendError), (429, TransientSendError)])
def test_twilio_server_errors_and_rate_limits_are_transient(twilio, status, error):
    twilio.answers.append((status, {"message": "try later"}))
    with pytest.raises(error, match=str(status)):
        TwilioSmsBackend().send(sms())


def test_twilio_refusing_the_number_is_permanent(twilio):
    twilio.answers.append((400, {"code": 21211, "message": "Invalid 'To' Phone Number"}))
    with pytest.raises(PermanentSendError, match="21211"):
        TwilioSmsBackend().send(sms())


def test_twilio_unreachable_is_transient(twilio, settings):
    twilio.shutdown()
    twilio.server_close()
    with pytest.raises(TransientSendError, match="unreachable"):
        TwilioSmsBackend().send(sms())


def test_a_reminder_goes_out_through_twilio_end_to_end(twilio):
    patient = sms_patient()
    ReminderPolicyFactory(clinic=patient.clinic, quiet_hours_start=None, quiet_hours_end=None)
    appointment = AppointmentFactory(clinic=patient.clinic, patient=patient)
    [confirmation, *_] = appointment_messages_sync(appointment=appointment)
    token, _ = messages_claim_due(limit=10)
    assert message_send(message_id=confirmation.pk, claim_token=str(token)) == "sent"
    confirmation.refresh_from_db()
    assert confirmation.provider_message_id == "SM123"
    assert twilio.requests[0]["form"]["To"] == str(patient.mobile_phone)


def signed_post(client, backend, data):
    url = "http://127.0.0.1:8000/messages/sms/inbound/"
    return client.post("/messages/sms/inbound/", data, HTTP_X_TWILIO_SIGNATURE=backend.signature(url, data))


def test_stop_reply_opts_the_number_out_and_cancels_its_scheduled_sms(client, twilio):
    patient = sms_patient()
    ReminderPolicyFactory(clinic=patient.clinic, quiet_hours_start=None, quiet_hours_end=None)
    appointment = AppointmentFactory(
        clinic=patient.clinic, patient=patient, start=timezone.now() + dt.timedelta(days=5)
    )
    appointment_messages_sync(appointment=appointment)
    data = {"From": str(patient.mobile_phone), "Body": " stop ", "AccountSid": "AC0123", "MessageSid": "SM9"}
    response = signed_post(client, TwilioSmsBackend(), data)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    patient.refresh_from_db()
    assert not patient.sms_consent
    assert OptOut.objects.get(patient=patient).source == "sms_stop"
    assert not Message.objects.filter(channel="sms", status=MessageStatus.SCHEDULED).exists()


def test_other_replies_change_nothing(client, twilio):
    patient = sms_patient()
    data = {"From": str(patient.mobile_phone), "Body": "see you then", "AccountSid": "AC0123"}
    assert signed_post(client, TwilioSmsBackend(), data).status_code == 200
    patient.refresh_from_db()
    assert patient.sms_consent


def test_an_unsigned_or_forged_stop_is_refused(client, twilio):
    patient = sms_patient()
    data = {"From": str(patient.mobile_phone), "Body": "STOP", "AccountSid": "AC0123"}
    assert client.post("/messages/sms/inbound/", data).status_code == 403
    forged = client.post("/messages/sms/inbound/", data, HTTP_X_TWILIO_SIGNATURE="bm9wZQ==")
    assert forged.status_code == 403
    patient.refresh_from_db()
    assert patient.sms_consent


def test_the_console_backend_has_no_inbound_webhook(client):
    assert client.post("/messages/sms/inbound/", {"Body": "STOP"}).status_code == 403


def test_unsubscribe_link_asks_first_then_opts_out_of_email(client):
    patient = PatientFactory()
    url = f"/messages/unsubscribe/{unsubscribe_token(patient_id=patient.pk)}/"
    page = client.get(url)
    assert page.status_code == 200
    assert b'<form method="post">' in page.content
    patient.refresh_from_db()
    assert patient.email_consent
    done = client.post(url)
    assert done.status_code == 200
    assert b"no longer receive emails" in done.content
    patient.refresh_from_db()
    assert not patient.email_consent
    assert OptOut.objects.get(patient=patient).source == "unsubscribe_link"
    assert client.post(url).status_code == 200  # one-click twice: still fine, one opt-out
    assert OptOut.objects.count() == 1


@pytest.mark.parametrize("token", ["nonsense", "W1siMSJdXQ:1abc:bad"])
def test_a_tampered_unsubscribe_link_is_not_found(client, token):
    assert client.get(f"/messages/unsubscribe/{token}/").status_code == 404
