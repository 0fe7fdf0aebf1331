"""iCalendar feeds: secret revocable URL, stable UID, SEQUENCE bumps, cancellations kept a while,
no patient name; parsed back with `icalendar`."""

from __future__ import annotations

import datetime as dt

import icalendar
import pytest

from sessions.models import CalendarFeed
from sessions.services import appointment_book, appointment_cancel, appointment_reschedule
from tests.sessions.conftest import local

pytestmark = pytest.mark.django_db


def _feed_url(client, practitioner) -> str:
    response = client.post("/api/v1/calendar-feeds/", {"practitioner": practitioner.pk}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["url"].split("127.0.0.1:8000", 1)[1]


def _events(api, url) -> tuple[dict[str, icalendar.Event], str]:
    response = api.get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(response.content)
    return {str(e["UID"]): e for e in calendar.walk("VEVENT")}, response.content.decode()


def _book(setup, start, patient=None):
    return appointment_book(
        clinic=setup.clinic,
        patient=patient or setup.patient,
        practitioner=setup.practitioner,
        service=setup.massage,
        start=start,
    )


def test_feed_lists_appointments_without_patient_details(setup, therapist_api, api):
    appointment = _book(setup, local(2027, 3, 2, 10, 0))
    url = _feed_url(therapist_api, setup.practitioner)
    events, text = _events(api, url)
    event = events[f"appointment-{appointment.pk}@127.0.0.1"]
    assert event.decoded("DTSTART") == local(2027, 3, 2, 10, 0)
    assert event.decoded("DTEND") == local(2027, 3, 2, 11, 0)
    assert str(event["SUMMARY"]) == "Remedial massage"
    assert str(event["LOCATION"]) == "Room 1, Main street"
    assert int(event["SEQUENCE"]) == 0
    assert setup.patient.family_name not in text
    assert setup.patient.given_name not in text
    assert setup.patient.email not in text


def test_changes_keep_the_uid_and_bump_the_sequence_and_cancellations_stay_a_while(
    setup, therapist_api, api, time_machine
):
    appointment = _book(setup, local(2027, 3, 2, 10, 0))
    url = _feed_url(therapist_api, setup.practitioner)
    uid = f"appointment-{appointment.pk}@127.0.0.1"
    appointment_reschedule(appointment=appointment, start=local(2027, 3, 2, 13, 0))
    events, _ = _events(api, url)
    assert int(events[uid]["SEQUENCE"]) == 1
    assert events[uid].decoded("DTSTART") == local(2027, 3, 2, 13, 0)
    appointment_cancel(appointment=appointment)
    events, _ = _events(api, url)
    assert str(events[uid]["STATUS"]) == "CANCELLED"
    assert int(events[uid]["SEQUENCE"]) == 2
    time_machine.move_to(dt.datetime(2027, 3, 1, 8, 0, tzinfo=dt.UTC) + dt.timedelta(days=31))
    events, _ = _events(api, url)
    assert uid not in events


def test_revoked_or_unknown_feed_is_404(setup, therapist_api, api):
    url = _feed_url(therapist_api, setup.practitioner)
    feed = CalendarFeed.objects.get()
    assert feed.digest not in url
    assert therapist_api.post(f"/api/v1/calendar-feeds/{feed.pk}/revoke/").status_code == 200
    assert api.get(url).status_code == 404
    assert api.get("/calendar/not-a-token.ics").status_code == 404


def test_therapists_manage_only_their_own_feed_and_receptionists_none(setup, therapist_api, receptionist_api):
    response = therapist_api.post("/api/v1/calendar-feeds/", {"practitioner": setup.other.pk}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"practitioner": ["Not found."]}
    assert receptionist_api.get("/api/v1/calendar-feeds/").status_code == 403


def test_owner_sees_every_feed_of_the_clinic(setup, owner_api, therapist_api):
    _feed_url(therapist_api, setup.practitioner)
    _feed_url(owner_api, setup.other)
    assert len(owner_api.get("/api/v1/calendar-feeds/").json()["results"]) == 2
    assert len(therapist_api.get("/api/v1/calendar-feeds/").json()["results"]) == 1
