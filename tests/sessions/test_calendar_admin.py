"""The front desk's calendar at /admin/calendar/: blocks in clinic time with status, intake and
flag badge, free starts from the API's slot search, booking, moving and cancelling through the
booking services, a clash refused with the API's message in clinic time, and a fixed number of
queries whatever the number of appointments."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from intake.models import FlagSeverity
from sessions.models import Appointment, AppointmentStatus, CancelledBy
from sessions.services import appointment_book
from tests.factories import PatientFactory, PatientFlagFactory, intake_link
from tests.sessions.conftest import local

pytestmark = pytest.mark.django_db

CALENDAR = "/admin/calendar/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _book(setup, start, patient=None, practitioner=None, service=None):
    return appointment_book(
        clinic=setup.clinic,
        patient=patient or setup.patient,
        practitioner=practitioner or setup.practitioner,
        service=service or setup.massage,
        start=start,
    )


def _text(response) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def _free_links(response) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="(/admin/calendar/book/[^"]+)"', response.content.decode())]


def test_the_url_is_named_and_the_old_day_view_leads_there(setup, receptionist):
    assert reverse("admin:calendar") == CALENDAR
    response = _client(receptionist).get("/admin/treatment_sessions/appointment/day/?date=2027-03-02")
    assert response.status_code == 302
    assert response["Location"] == "/admin/calendar/?date=2027-03-02"


def test_day_view_shows_each_practitioner_with_blocks_in_clinic_time(setup, receptionist):
    setup.patient.given_name, setup.patient.family_name = "Maya", "Singh"
    setup.patient.save()
    appointment = _book(setup, local(2027, 3, 2, 10, 0))
    intake_link(setup.patient, appointment=appointment)
    PatientFlagFactory(clinic=setup.clinic, patient=setup.patient, severity=FlagSeverity.URGENT, rule_code="dvt")
    response = _client(receptionist).get(CALENDAR, {"date": "2027-03-02"})
    assert response.status_code == 200
    text = _text(response)
    assert "Riverside: Tuesday 2 March 2027" in text
    assert "Times in America/Toronto." in text
    assert "Theo Therapist" in text
    assert "Una Other" in text
    html = response.content.decode()
    # 10:00 in Toronto is 15:00 UTC: the block says 10:00.
    # The flag badge comes before the name, on the block's first line, so it is never cut.
    assert "10:00–11:00 ⚠︎ Urgent flag Maya Singh" in text
    assert 'aria-label="10:00–11:00 Maya Singh, Urgent flag, Remedial massage · Room 1, Booked, ' in html
    assert "Dvt" not in text  # the condition is clinical content: receptionists get the severity
    assert "Remedial massage · Room 1" in text
    assert "Booked · Intake sent, not submitted" in text
    # Sized by duration: 60 minutes at 1.2 px a minute; placed at 10:00 (the grid starts at 08:00).
    assert 'style="top: 144px; height: 72px"' in html
    assert f'href="/admin/calendar/appointment/{appointment.pk}/"' in html


def test_free_starts_come_from_the_slot_search_and_link_to_a_prefilled_form(setup, receptionist, api):
    _book(setup, local(2027, 3, 2, 10, 0))
    client = _client(receptionist)
    response = client.get(CALENDAR, {"date": "2027-03-02", "service": setup.massage.pk})
    links = _free_links(response)
    found = {(int(q["practitioner"][0]), q["start"][0]) for q in (parse_qs(urlsplit(link).query) for link in links)}
    api.force_authenticate(receptionist)
    slots = api.get(
        "/api/v1/slots/",
        {"service": setup.massage.pk, "start": "2027-03-02T05:00:00Z", "end": "2027-03-03T05:00:00Z"},
    ).json()["results"]
    assert found == {(s["practitioner"], s["start"]) for s in slots}
    theo = setup.practitioner.pk
    assert (theo, "2027-03-02T11:15:00-05:00") in found  # after the 10:00 visit and its buffer
    assert (theo, "2027-03-02T09:00:00-05:00") not in found  # would run into the 10:00 visit
    assert (theo, "2027-03-02T10:00:00-05:00") not in found  # taken
    assert (setup.other.pk, "2027-03-02T10:00:00-05:00") in found
    first = links[0]
    form = client.get(first)
    assert form.status_code == 200
    text = _text(form)
    assert re.search(r"When Tuesday 2 March 2027, \d\d:\d\d–\d\d:\d\d \(America/Toronto\)", text)
    assert "Remedial massage (60 min)" in text


def test_the_receptionist_books_from_a_free_slot_through_the_booking_service(setup, receptionist):
    client = _client(receptionist)
    query = {
        "clinic": setup.clinic.slug,
        "practitioner": setup.practitioner.pk,
        "service": setup.massage.pk,
        "room": setup.room2.pk,
        "start": "2027-03-02T09:00:00-05:00",
    }
    found = client.get("/admin/calendar/book/", {**query, "q": setup.patient.family_name})
    assert f'value="{setup.patient.pk}"' in found.content.decode()
    response = client.post("/admin/calendar/book/", {**query, "patient": setup.patient.pk, "notes": "Parking pass"})
    assert response.status_code == 302
    assert response["Location"] == f"/admin/calendar/?clinic=riverside&date=2027-03-02&service={setup.massage.pk}"
    appointment = Appointment.objects.get()
    assert appointment.start == local(2027, 3, 2, 9, 0)
    assert appointment.room == setup.room2
    assert appointment.booked_by == receptionist
    assert appointment.notes == "Parking pass"
    assert appointment.changes.get().kind == "booked"
    page = client.get(response["Location"])
    assert "Booked" in _text(page)
    assert "Tuesday 2 March 2027, 09:00–10:00 (America/Toronto)" in _text(page)


def test_booking_into_a_slot_taken_meanwhile_names_the_clash_in_clinic_time(setup, receptionist):
    client = _client(receptionist)
    query = {
        "clinic": setup.clinic.slug,
        "practitioner": setup.practitioner.pk,
        "service": setup.massage.pk,
        "start": "2027-03-02T10:30:00-05:00",
    }
    page = client.get(CALENDAR, {"date": "2027-03-02", "service": setup.massage.pk})
    assert any("start=2027-03-02T10%3A30%3A00-05%3A00" in link.replace(":", "%3A") for link in _free_links(page))
    taken = _book(setup, local(2027, 3, 2, 10, 0), patient=setup.patient2)  # another desk, meanwhile
    response = client.post("/admin/calendar/book/", {**query, "patient": setup.patient.pk})
    assert response.status_code == 409
    expected = (
        "The practitioner is already booked from 10:00 to 11:15 on Tuesday 2 March 2027 "
        f"(America/Toronto), by appointment {taken.pk}."
    )
    assert expected in _text(response)
    assert f'href="/admin/calendar/appointment/{taken.pk}/"' in response.content.decode()
    assert "T15:" not in _text(response)
    assert "UTC" not in _text(response)
    assert Appointment.objects.count() == 1


def test_bad_booking_links_and_a_missing_patient_are_field_errors(setup, receptionist, other_clinic):
    client = _client(receptionist)
    query = {"practitioner": setup.practitioner.pk, "service": setup.massage.pk, "start": "yesterday"}
    response = client.get("/admin/calendar/book/", query)
    assert response.status_code == 400
    assert "Start: Not a time." in _text(response)
    query["start"] = "2027-03-02T09:00:00-05:00"
    response = client.post("/admin/calendar/book/", query)
    assert response.status_code == 400
    assert "Choose the patient to book." in _text(response)
    stranger = PatientFactory(clinic=other_clinic)
    response = client.post("/admin/calendar/book/", {**query, "patient": stranger.pk})
    assert response.status_code == 400
    assert Appointment.objects.count() == 0


def test_reschedule_by_choosing_another_free_slot(setup, receptionist):
    appointment = _book(setup, local(2027, 3, 2, 10, 0))
    client = _client(receptionist)
    url = f"/admin/calendar/appointment/{appointment.pk}/"
    page = client.get(url, {"date": "2027-03-03"})
    assert page.status_code == 200
    value = f"{setup.other.pk}|{setup.room1.pk}|2027-03-03T14:00:00-05:00"
    assert f'value="{value}"' in page.content.decode()
    response = client.post(url, {"slot": value})
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.start == local(2027, 3, 3, 14, 0)
    assert appointment.practitioner == setup.other
    assert appointment.changes.filter(kind="rescheduled", by=receptionist).exists()
    day = client.get(response["Location"])
    assert "to Wednesday 3 March 2027, 14:00–15:00 (America/Toronto) with Una Other" in _text(day)


def test_a_visit_may_move_into_its_own_time(setup, receptionist):
    appointment = _book(setup, local(2027, 3, 2, 10, 0))
    client = _client(receptionist)
    url = f"/admin/calendar/appointment/{appointment.pk}/"
    value = f"{setup.practitioner.pk}|{setup.room1.pk}|2027-03-02T10:30:00-05:00"
    assert f'value="{value}"' in client.get(url).content.decode()
    assert client.post(url, {"slot": value}).status_code == 302
    appointment.refresh_from_db()
    assert appointment.start == local(2027, 3, 2, 10, 30)


def test_moving_onto_a_time_taken_meanwhile_is_refused_in_clinic_time(setup, receptionist):
    appointment = _book(setup, local(2027, 3, 2, 10, 0))
    taken = _book(setup, local(2027, 3, 2, 14, 0), patient=setup.patient2)
    response = _client(receptionist).post(
        f"/admin/calendar/appointment/{appointment.pk}/",
        {"slot": f"{setup.practitioner.pk}||2027-03-02T14:30:00-05:00"},
    )
    assert response.status_code == 409
    assert f"from 14:00 to 15:15 on Tuesday 2 March 2027 (America/Toronto), by appointment {taken.pk}" in _text(
        response
    )
    appointment.refresh_from_db()
    assert appointment.start == local(2027, 3, 2, 10, 0)


@pytest.mark.parametrize(("party", "late"), [(CancelledBy.PATIENT, False), (CancelledBy.CLINIC, False)])
def test_cancel_with_who_and_why(setup, receptionist, party, late):
    appointment = _book(setup, local(2027, 3, 4, 10, 0))
    url = f"/admin/calendar/appointment/{appointment.pk}/"
    client = _client(receptionist)
    refused = client.post(url, {"cancel": "1", "party": party})
    assert refused.status_code == 400
    assert "Give the reason." in _text(refused)
    response = client.post(url, {"cancel": "1", "party": party, "reason": "Car broke down"})
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    assert appointment.cancelled_by_party == party
    assert appointment.cancellation_reason == "Car broke down"
    assert appointment.cancelled_by == receptionist
    assert appointment.late_cancellation is late
    day = client.get(response["Location"])
    assert "Cancelled: " in _text(day)
    assert "Thursday 4 March 2027, 10:00–11:00 (America/Toronto)" in _text(day)


def test_no_show_only_once_the_visit_started(setup, receptionist, time_machine):
    appointment = _book(setup, local(2027, 3, 2, 10, 0))
    url = f"/admin/calendar/appointment/{appointment.pk}/"
    client = _client(receptionist)
    early = client.post(url, {"cancel": "1", "party": "no_show", "reason": "Did not come"})
    assert early.status_code == 400
    assert "has not started yet cannot be a no-show" in _text(early)
    time_machine.move_to(local(2027, 3, 2, 10, 20))
    client.force_login(receptionist)  # a day later the idle session has ended
    response = client.post(url, {"cancel": "1", "party": "no_show", "reason": "Did not come"})
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.NO_SHOW
    assert appointment.changes.get(new_status="no_show").reason == "Did not come"


def test_week_view_has_a_column_per_day_and_room_view_a_column_per_room(setup, receptionist):
    _book(setup, local(2027, 3, 3, 11, 0))
    client = _client(receptionist)
    week = client.get(CALENDAR, {"date": "2027-03-03", "view": "week", "practitioner": setup.practitioner.pk})
    text = _text(week)
    assert "Week of Monday 1 March to Sunday 7 March 2027" in text
    for day in ("Mon 1 Mar", "Tue 2 Mar", "Wed 3 Mar", "Sun 7 Mar"):
        assert day in text
    assert "11:00–12:00" in text
    rooms = client.get(CALENDAR, {"date": "2027-03-03", "by": "room"})
    text = _text(rooms)
    assert "Room 1" in text
    assert "Room 2" in text
    assert "Remedial massage · Theo Therapist" in text


def test_bad_dates_are_a_400_with_the_field_named(setup, receptionist):
    appointment = _book(setup, local(2027, 3, 2, 10, 0))
    for bad in ("2027-02-30", "0001-01-01"):
        response = _client(receptionist).get(f"/admin/calendar/appointment/{appointment.pk}/", {"date": bad})
        assert response.status_code == 400
        assert "Date: " in _text(response)
    response = _client(receptionist).get(CALENDAR, {"date": "2027-02-30"})
    assert response.status_code == 400
    assert "Date: Enter a valid date." in _text(response)
    response = _client(receptionist).get(CALENDAR, {"date": "0001-01-01"})
    assert response.status_code == 400


def test_another_clinic_sees_nothing_of_ours(setup, receptionist, other_therapist):
    appointment = _book(setup, local(2027, 3, 2, 10, 0))
    client = _client(other_therapist)
    assert str(setup.patient) not in client.get(CALENDAR, {"date": "2027-03-02"}).content.decode()
    assert client.get(f"/admin/calendar/appointment/{appointment.pk}/").status_code == 404
    response = client.get(
        "/admin/calendar/book/",
        {"practitioner": setup.practitioner.pk, "service": setup.massage.pk, "start": "2027-03-02T09:00:00-05:00"},
    )
    assert response.status_code == 400


def test_each_appointment_page_links_to_the_calendar(setup, receptionist):
    appointment = _book(setup, local(2027, 3, 2, 10, 0))
    page = _client(receptionist).get(f"/admin/treatment_sessions/appointment/{appointment.pk}/change/")
    assert f'href="/admin/calendar/appointment/{appointment.pk}/"' in page.content.decode()
    listing = _client(receptionist).get("/admin/treatment_sessions/appointment/")
    assert 'href="/admin/calendar/"' in listing.content.decode()


def _fill_week(setup, first: int, last: int) -> None:
    starts = [local(2027, 3, day, hour, 0) for day in range(2, 7) for hour in (9, 11, 13, 15)]
    for index in range(first, last):
        patient = PatientFactory(clinic=setup.clinic)
        PatientFlagFactory(clinic=setup.clinic, patient=patient, severity=FlagSeverity.URGENT)
        intake_link(patient)
        _book(setup, starts[index], patient=patient, practitioner=setup.practitioner if index % 2 else setup.other)


def test_a_week_costs_the_same_queries_whatever_the_number_of_appointments(
    setup, receptionist, django_assert_max_num_queries
):
    # Session, user and memberships (3), clinics for the switcher (1), practitioners, rooms and
    # services (3), the services the practitioners shown offer, for the default service (1),
    # appointments with patient, service, practitioner and room (1), intake links (1), active
    # flags (1), and the slot search (practitioners, hours, exceptions, appointments, rooms, and
    # the service's rooms: up to 6). A handful more would be a query per appointment.
    client = _client(receptionist)
    pages = (
        {"date": "2027-03-03", "view": "week", "practitioner": setup.other.pk},
        {"date": "2027-03-02"},
        {"date": "2027-03-02", "by": "room"},
    )
    counts = {}
    for size, (first, last) in {"one": (0, 1), "twenty": (1, 20)}.items():
        _fill_week(setup, first, last)
        for index, query in enumerate(pages):
            with CaptureQueriesContext(connection) as queries:
                response = client.get(CALENDAR, query)
            assert response.status_code == 200
            counts[size, index] = len(queries)
        assert _text(response).count("Urgent flag") == (1 if size == "one" else 4)
    for index in range(len(pages)):
        assert counts["one", index] == counts["twenty", index] <= 20, counts
    with django_assert_max_num_queries(20):
        client.get(CALENDAR, pages[0])


def test_a_dst_week_keeps_visits_on_the_wall_clock(setup, receptionist):
    # Toronto springs forward at 02:00 on Sunday 14 March 2027: 10:00 is 15:00 UTC before, 14:00 after.
    before = _book(setup, local(2027, 3, 13, 10, 0))
    after = _book(setup, local(2027, 3, 14, 10, 0))
    assert after.start.astimezone(dt.UTC).hour - before.start.astimezone(dt.UTC).hour == -1
    response = _client(receptionist).get(
        CALENDAR, {"date": "2027-03-14", "view": "week", "practitioner": setup.practitioner.pk, "service": ""}
    )
    html = response.content.decode()
    text = _text(response)
    assert text.count("10:00–11:00") == 2
    # Both blocks at the same height of the grid: 10:00 wall clock, whatever the offset.
    assert html.count('style="top: 144px; height: 72px"') == 2
