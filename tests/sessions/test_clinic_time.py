"""Clinic time in the admin (issue 14, item 1): staff of a clinic in America/Toronto read and
type wall-clock times of Toronto, across a DST change; a user of two clinics in different zones
sees each clinic's rows in that clinic's zone."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from clinic.security.roles import Role
from clinic.services import membership_set
from sessions.models import TreatmentSession
from sessions.services import appointment_book
from tests.factories import AppointmentFactory, ClinicFactory, PractitionerFactory, TreatmentSessionFactory
from tests.sessions.test_admin import form_data

pytestmark = pytest.mark.django_db

NOTES = "/admin/treatment_sessions/treatmentsession/"
APPOINTMENTS = "/admin/treatment_sessions/appointment/"
UTC = dt.UTC
TORONTO = ZoneInfo("America/Toronto")
LONDON = ZoneInfo("Europe/London")


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _note_add(client, practitioner, patient, date: str, time: str):
    data = form_data(TreatmentSession(), subjective="Calf pain.") | {
        "clinic": str(practitioner.clinic_id), "patient": str(patient.pk), "practitioner": str(practitioner.pk),
        "started_at_0": date, "started_at_1": time,
    }  # fmt: skip
    return client.post(f"{NOTES}add/", data)


@pytest.fixture
def booked(practitioner, patient, receptionist):
    """The front desk booked Maya with Theo, so Theo may open her record."""
    return AppointmentFactory(clinic=practitioner.clinic, patient=patient, practitioner=practitioner)


@pytest.mark.parametrize(
    ("date", "stored"),
    [
        ("2026-01-13", dt.datetime(2026, 1, 13, 14, 0, tzinfo=UTC)),  # EST, UTC-5
        ("2026-07-14", dt.datetime(2026, 7, 14, 13, 0, tzinfo=UTC)),  # EDT, UTC-4
    ],
)
def test_a_note_start_typed_as_0900_is_stored_as_0900_in_the_clinic_zone(
    therapist, practitioner, patient, booked, catalogs, date, stored
):
    response = _note_add(_client(therapist), practitioner, patient, date, "09:00:00")
    assert response.status_code == 302, response.context["adminform"].form.errors
    started = TreatmentSession.objects.get().started_at
    assert started == stored
    assert started.astimezone(TORONTO).time() == dt.time(9, 0)


@pytest.mark.parametrize(
    ("date", "time", "says"),
    [
        ("2026-03-08", "02:30:00", "2026-03-08 02:30 does not exist (the clocks go forward) in America/Toronto"),
        ("2026-11-01", "01:30:00", "2026-11-01 01:30 happens twice (the clocks go back) in America/Toronto"),
    ],
)
def test_a_time_in_a_dst_gap_or_overlap_is_a_field_error_naming_the_zone(
    therapist, practitioner, patient, booked, catalogs, date, time, says
):
    response = _note_add(_client(therapist), practitioner, patient, date, time)
    assert response.status_code == 200
    assert says in response.context["adminform"].form.errors["started_at"][0]
    assert not TreatmentSession.objects.exists()


def test_the_admin_tells_the_browser_the_clinic_offset_not_the_server_one(therapist, practitioner):
    page = _client(therapist).get(f"{NOTES}add/").content.decode()
    # The admin's "You are N hours behind server time" compares the browser with this offset.
    offset = int(dt.datetime.now(TORONTO).utcoffset().total_seconds())
    assert f'data-admin-utc-offset="{offset}"' in page


def test_admin_lists_show_appointments_and_notes_in_clinic_time(
    receptionist, therapist, practitioner, patient, booked, catalogs
):
    booked.start = dt.datetime(2026, 12, 4, 15, 30, tzinfo=TORONTO)
    booked.end = booked.start + dt.timedelta(hours=1)
    booked.blocked_until = booked.end
    booked.save()
    TreatmentSessionFactory(
        clinic=practitioner.clinic,
        practitioner=practitioner,
        patient=patient,
        started_at=dt.datetime(2026, 7, 14, 9, 15, tzinfo=TORONTO),
    )
    appointments = _client(receptionist).get(APPOINTMENTS).content.decode()
    assert "Dec. 4, 2026, 3:30 p.m." in appointments
    assert "8:30 p.m." not in appointments
    notes = _client(therapist).get(NOTES).content.decode()
    assert "July 14, 2026, 9:15 a.m." in notes
    assert "1:15 p.m." not in notes


def test_a_user_of_two_clinics_sees_each_clinic_rows_in_that_clinic_zone(clinic, receptionist):
    london = ClinicFactory(name="Thames", slug="thames", time_zone="Europe/London")
    membership_set(clinic=london, user=receptionist, role=Role.RECEPTIONIST)
    at = dt.datetime(2026, 12, 4, 15, 30, tzinfo=UTC)  # 10:30 in Toronto, 15:30 in London
    here = AppointmentFactory(clinic=clinic, start=at)
    there = AppointmentFactory(clinic=london, start=at, practitioner=PractitionerFactory(clinic=london))
    client = _client(receptionist)
    page = client.get(APPOINTMENTS).content.decode()
    # Start and end in one column, the zone named once per row.
    assert re.search(r"Dec\. 4, 2026, 10:30 a\.m\.–[^<]* EST<", page)
    assert re.search(r"Dec\. 4, 2026, 3:30 p\.m\.–[^<]* GMT<", page)
    # Each change page reads and shows the start in its own clinic's zone.
    assert 'value="10:30:00"' in client.get(f"{APPOINTMENTS}{here.pk}/change/").content.decode()
    assert 'value="15:30:00"' in client.get(f"{APPOINTMENTS}{there.pk}/change/").content.decode()


def test_an_appointment_page_title_is_in_clinic_time(setup, receptionist):
    appointment = appointment_book(
        clinic=setup.clinic,
        patient=setup.patient,
        practitioner=setup.practitioner,
        service=setup.massage,
        start=dt.datetime(2027, 3, 2, 15, 30, tzinfo=TORONTO),
        booked_by=receptionist,
    )
    page = _client(receptionist).get(f"{APPOINTMENTS}{appointment.pk}/change/").content.decode()
    assert f"{setup.patient} with Theo Therapist at 2027-03-02 15:30" in page
    assert "20:30" not in page


def test_the_today_page_lists_the_day_in_clinic_time(setup, therapist):
    appointment_book(
        clinic=setup.clinic,
        patient=setup.patient,
        practitioner=setup.practitioner,
        service=setup.massage,
        start=dt.datetime(2027, 3, 1, 9, 0, tzinfo=TORONTO),
    )
    page = _client(therapist).get(f"{NOTES}today/").content.decode()
    assert '<td class="today-time">09:00</td>' in page
    assert "14:00" not in page
    assert "America/Toronto" in page
