"""GET /api/v1/messages/ and the admin message log with its resend action."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic.models import Message, MessageStatus
from clinic.security.roles import Role
from clinic.services import api_key_create
from tests.factories import AppointmentFactory, MessageFactory, staff

pytestmark = pytest.mark.django_db
URL = "/api/v1/messages/"


@pytest.fixture
def messages(clinic, other_clinic):
    first = AppointmentFactory(clinic=clinic)
    second = AppointmentFactory(clinic=clinic)
    return {
        "a": MessageFactory(appointment=first),
        "b": MessageFactory(appointment=first, channel="sms", status=MessageStatus.SENT),
        "c": MessageFactory(appointment=second, status=MessageStatus.FAILED),
        "other": MessageFactory(appointment=AppointmentFactory(clinic=other_clinic)),
    }


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.mark.parametrize("client_name", ["owner_api", "therapist_api", "receptionist_api"])
def test_every_staff_role_lists_only_its_clinics_messages(request, messages, client_name):
    api = request.getfixturevalue(client_name)
    assert ids(api.get(URL)) == {messages[k].pk for k in "abc"}


def test_filters_by_patient_appointment_and_status(receptionist_api, messages):
    a = messages["a"]
    assert ids(receptionist_api.get(URL, {"appointment": a.about_id})) == {a.pk, messages["b"].pk}
    assert ids(receptionist_api.get(URL, {"patient": messages["c"].patient_id})) == {messages["c"].pk}
    assert ids(receptionist_api.get(URL, {"status": ["failed", "sent"]})) == {messages["b"].pk, messages["c"].pk}
    bad = receptionist_api.get(URL, {"status": "nope"})
    assert bad.status_code == 400
    assert "status" in bad.json()["errors"]


def test_another_clinics_message_is_not_found(owner_api, messages):
    assert owner_api.get(f"{URL}{messages['other'].pk}/").status_code == 404
    row = owner_api.get(f"{URL}{messages['a'].pk}/").json()
    assert row["about_type"] == "treatment_sessions.appointment"


def test_the_log_is_read_only(owner_api, messages):
    assert owner_api.post(URL, {}).status_code == 405
    assert owner_api.delete(f"{URL}{messages['a'].pk}/").status_code == 405


def test_api_keys_need_the_messages_scope(api, clinic, messages):
    _, without = api_key_create(clinic=clinic, name="w", scopes=["clinic:read"])
    _, allowed = api_key_create(clinic=clinic, name="m", scopes=["messages:read"])
    assert api.get(URL, HTTP_AUTHORIZATION=f"Bearer {without}").status_code == 403
    assert ids(api.get(URL, HTTP_AUTHORIZATION=f"Bearer {allowed}")) == {messages[k].pk for k in "abc"}


def test_anonymous_callers_are_refused(api, messages):
    assert api.get(URL).status_code == 401


def test_owner_resends_a_failed_message_from_the_admin(client, clinic, messages):
    owner = staff(clinic, Role.OWNER, "olga-owner")
    client.force_login(owner)
    failed, sent = messages["c"], messages["b"]
    changelist = reverse("admin:clinic_message_changelist")
    assert client.get(changelist, {"status__exact": "failed"}).status_code == 200
    response = client.post(changelist, {"action": "resend", "_selected_action": [failed.pk, sent.pk]}, follow=True)
    assert response.status_code == 200
    assert b"1 message(s) queued again; 1 left as they were." in response.content
    failed.refresh_from_db()
    sent.refresh_from_db()
    assert (failed.status, sent.status) == (MessageStatus.SCHEDULED, MessageStatus.SENT)
    assert failed.due_at <= timezone.now() + dt.timedelta(seconds=1)


def test_receptionist_sees_the_admin_log_but_cannot_resend(client, clinic, receptionist, messages):
    client.force_login(receptionist)
    changelist = reverse("admin:clinic_message_changelist")
    assert client.get(changelist).status_code == 200
    client.post(changelist, {"action": "resend", "_selected_action": [messages["c"].pk]})
    assert Message.objects.get(pk=messages["c"].pk).status == MessageStatus.FAILED
