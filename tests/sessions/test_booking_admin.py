"""Front-desk admin: booking and moving go through the services (the day and week calendar
is tested in test_calendar_admin.py)."""

from __future__ import annotations

import pytest
from django.test import Client

from sessions.models import Appointment
from sessions.services import appointment_book
from tests.sessions.conftest import local

pytestmark = pytest.mark.django_db

ADD = "/admin/treatment_sessions/appointment/add/"
INLINE = {
    "changes-TOTAL_FORMS": "0",
    "changes-INITIAL_FORMS": "0",
    "changes-MIN_NUM_FORMS": "0",
    "changes-MAX_NUM_FORMS": "1000",
}


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _form(setup, date="2027-03-02", time="10:00:00", **extra):
    data = {
        "clinic": setup.clinic.pk,
        "patient": setup.patient.pk,
        "practitioner": setup.practitioner.pk,
        "service": setup.massage.pk,
        "start_0": date,
        "start_1": time,
        "notes": "",
        **INLINE,
    }
    data.update(extra)
    return data


def test_admin_books_in_the_clinic_zone_through_the_service(setup, receptionist):
    response = _client(receptionist).post(ADD, _form(setup))
    assert response.status_code == 302
    appointment = Appointment.objects.get()
    assert appointment.start == local(2027, 3, 2, 10, 0)
    assert appointment.room == setup.room1
    assert appointment.booked_by == receptionist
    assert appointment.changes.count() == 1


def test_admin_shows_hours_and_clashes_as_form_errors(setup, receptionist, therapist):
    client = _client(receptionist)
    response = client.post(ADD, _form(setup, time="07:00:00"))
    assert response.status_code == 200
    assert "outside Theo Therapist" in response.content.decode()
    client.post(ADD, _form(setup))
    response = client.post(ADD, _form(setup, time="10:30:00", patient=setup.patient2.pk))
    taken = Appointment.objects.get()
    assert (
        "The practitioner is already booked from 10:00 to 11:15 on Tuesday 2 March 2027 (America/Toronto), "
        f"by appointment {taken.pk}."
    ) in response.content.decode()
    response = _client(therapist).post(
        ADD, _form(setup, time="18:00:00", hours_override="on", hours_override_reason="late")
    )
    assert "You may not book outside working hours." in response.content.decode()
    assert Appointment.objects.count() == 1


def test_admin_moves_an_appointment_and_records_it(setup, receptionist):
    appointment = appointment_book(
        clinic=setup.clinic,
        patient=setup.patient,
        practitioner=setup.practitioner,
        service=setup.massage,
        start=local(2027, 3, 2, 10, 0),
    )
    url = f"/admin/treatment_sessions/appointment/{appointment.pk}/change/"
    response = _client(receptionist).post(url, _form(setup, time="14:00:00"))
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.start == local(2027, 3, 2, 14, 0)
    assert appointment.changes.filter(kind="rescheduled").exists()
