"""Free-slot search: hours, buffers, exceptions, rooms, daylight-saving changes, and the API."""

from __future__ import annotations

import datetime as dt

import pytest

from sessions.models import ExceptionKind
from sessions.services import appointment_book
from tests.factories import AvailabilityExceptionFactory, PractitionerFactory, ServiceFactory
from tests.sessions.conftest import local

pytestmark = pytest.mark.django_db

URL = "/api/v1/slots/"


def slots(client, s, start, end, service=None, **extra):
    params = {"service": (service or s.massage).pk, "start": start.isoformat(), "end": end.isoformat(), **extra}
    response = client.get(URL, params)
    assert response.status_code == 200, response.json()
    return response.json()["results"]


def starts(rows, practitioner=None):
    return [r["start"] for r in rows if practitioner is None or r["practitioner"] == practitioner.pk]


def hhmm(rows):
    return [r["start"][11:16] for r in rows]


def test_a_free_day_offers_every_aligned_start_that_ends_by_closing(setup, receptionist_api):
    rows = slots(
        receptionist_api, setup, local(2027, 3, 2, 0, 0), local(2027, 3, 3, 0, 0), practitioner=setup.practitioner.pk
    )
    assert hhmm(rows)[0] == "09:00"
    assert hhmm(rows)[-1] == "16:00"  # 60 minutes must fit before 17:00; the buffer may not
    assert len(rows) == 29
    assert rows[0] == {
        "practitioner": setup.practitioner.pk,
        "location": setup.location.pk,
        "room": setup.room1.pk,
        "start": "2027-03-02T09:00:00-05:00",
        "end": "2027-03-02T10:00:00-05:00",
    }


def test_appointments_and_their_buffers_block_slots(setup, receptionist_api):
    appointment_book(
        clinic=setup.clinic,
        patient=setup.patient,
        practitioner=setup.practitioner,
        service=setup.massage,
        start=local(2027, 3, 2, 10, 0),
    )
    rows = slots(
        receptionist_api, setup, local(2027, 3, 2, 0, 0), local(2027, 3, 3, 0, 0), practitioner=setup.practitioner.pk
    )
    times = hhmm(rows)
    # 09:00 would run (with its buffer) into 10:00; 11:00 would start inside the 10:00's buffer.
    assert "09:00" not in times
    assert "08:45" not in times
    assert "11:00" not in times
    assert times[0] == "11:15"


def test_time_off_removes_slots_and_an_extra_shift_adds_them(setup, receptionist_api):
    AvailabilityExceptionFactory(
        clinic=setup.clinic, practitioner=setup.practitioner, kind=ExceptionKind.TIME_OFF, date=dt.date(2027, 3, 2)
    )
    AvailabilityExceptionFactory(
        clinic=setup.clinic,
        practitioner=setup.practitioner,
        kind=ExceptionKind.TIME_OFF,
        date=dt.date(2027, 3, 3),
        start_time=dt.time(12),
        end_time=dt.time(17),
    )
    AvailabilityExceptionFactory(
        clinic=setup.clinic,
        practitioner=setup.practitioner,
        kind=ExceptionKind.EXTRA,
        date=dt.date(2027, 3, 3),
        start_time=dt.time(18),
        end_time=dt.time(19),
        location=setup.location,
    )
    rows = slots(
        receptionist_api, setup, local(2027, 3, 2, 0, 0), local(2027, 3, 4, 0, 0), practitioner=setup.practitioner.pk
    )
    assert not [r for r in rows if r["start"].startswith("2027-03-02")]
    wednesday = hhmm(r for r in rows if r["start"].startswith("2027-03-03"))
    assert wednesday[0] == "09:00"
    assert "11:00" in wednesday
    assert "11:15" not in wednesday  # would end after the time off starts at 12:00
    assert wednesday[-1] == "18:00"


def test_a_slot_needs_a_free_room_that_allows_the_service(setup, receptionist_api):
    for practitioner in (setup.other, PractitionerFactory(clinic=setup.clinic)):
        practitioner.services.add(setup.massage)
        if not practitioner.working_hours.exists():
            from tests.sessions.conftest import weekday_hours

            weekday_hours(setup.clinic, practitioner, setup.location)
        appointment_book(
            clinic=setup.clinic,
            patient=setup.patient2,
            practitioner=practitioner,
            service=setup.massage,
            start=local(2027, 3, 2, 13, 0),
        )
    rows = slots(
        receptionist_api, setup, local(2027, 3, 2, 0, 0), local(2027, 3, 3, 0, 0), practitioner=setup.practitioner.pk
    )
    times = hhmm(rows)
    assert "12:00" not in times  # both rooms are busy from 13:00
    assert "13:00" not in times
    assert "11:45" in times
    assert "14:15" in times
    # A service that needs no room is still offered then.
    no_room = slots(
        receptionist_api,
        setup,
        local(2027, 3, 2, 13, 0),
        local(2027, 3, 2, 13, 1),
        service=setup.acupuncture,
        practitioner=setup.practitioner.pk,
    )
    assert hhmm(no_room) == ["13:00"]
    assert no_room[0]["room"] is None


def test_all_practitioners_who_offer_the_service_are_searched(setup, receptionist_api):
    rows = slots(receptionist_api, setup, local(2027, 3, 2, 9, 0), local(2027, 3, 2, 9, 1))
    assert sorted(r["practitioner"] for r in rows) == sorted([setup.practitioner.pk, setup.other.pk])
    rows = slots(receptionist_api, setup, local(2027, 3, 2, 9, 0), local(2027, 3, 2, 9, 1), service=setup.acupuncture)
    assert [r["practitioner"] for r in rows] == [setup.practitioner.pk]


def test_past_slots_are_not_offered(setup, receptionist_api, time_machine):
    time_machine.move_to(local(2027, 3, 2, 12, 5))
    rows = slots(
        receptionist_api, setup, local(2027, 3, 2, 0, 0), local(2027, 3, 3, 0, 0), practitioner=setup.practitioner.pk
    )
    assert hhmm(rows)[0] == "12:15"


def test_every_offered_slot_can_be_booked_and_then_disappears(setup, receptionist_api):
    rows = slots(receptionist_api, setup, local(2027, 3, 2, 0, 0), local(2027, 3, 3, 0, 0))
    first = rows[0]
    response = receptionist_api.post(
        "/api/v1/appointments/",
        {
            "patient": setup.patient.pk,
            "practitioner": first["practitioner"],
            "service": setup.massage.pk,
            "start": first["start"],
            "room": first["room"],
        },
        format="json",
    )
    assert response.status_code == 201
    again = slots(receptionist_api, setup, local(2027, 3, 2, 0, 0), local(2027, 3, 3, 0, 0))
    assert (first["practitioner"], first["start"]) not in {(r["practitioner"], r["start"]) for r in again}


def _night_shift(setup, date, start, end, granularity=60):
    setup.clinic.booking_granularity_minutes = granularity
    setup.clinic.save()
    AvailabilityExceptionFactory(
        clinic=setup.clinic,
        practitioner=setup.practitioner,
        kind=ExceptionKind.EXTRA,
        date=date,
        start_time=start,
        end_time=end,
        location=setup.location,
    )


def test_spring_forward_night_skips_the_missing_hour(setup, receptionist_api):
    # 2027-03-14 02:00 EST jumps to 03:00 EDT: a 01:00-04:00 shift is two real hours.
    _night_shift(setup, dt.date(2027, 3, 14), dt.time(1), dt.time(4))
    rows = slots(
        receptionist_api,
        setup,
        local(2027, 3, 14, 0, 0),
        local(2027, 3, 14, 8, 0),
        service=setup.acupuncture,
        practitioner=setup.practitioner.pk,
    )
    assert starts(rows) == ["2027-03-14T01:00:00-05:00", "2027-03-14T03:00:00-04:00"]


def test_fall_back_night_offers_both_one_oclocks(setup, receptionist_api, time_machine):
    time_machine.move_to(local(2027, 11, 1, 8, 0))
    # 2027-11-07 02:00 EDT falls back to 01:00 EST: a 00:00-03:00 shift is four real hours.
    _night_shift(setup, dt.date(2027, 11, 7), dt.time(0), dt.time(3))
    rows = slots(
        receptionist_api,
        setup,
        local(2027, 11, 6, 23, 0),
        local(2027, 11, 7, 8, 0),
        service=setup.acupuncture,
        practitioner=setup.practitioner.pk,
    )
    assert starts(rows) == [
        "2027-11-07T00:00:00-04:00",
        "2027-11-07T01:00:00-04:00",
        "2027-11-07T01:00:00-05:00",
        "2027-11-07T02:00:00-05:00",
    ]
    # Both 01:00s are bookable, one after the other.
    for row in rows[1:3]:
        response = receptionist_api.post(
            "/api/v1/appointments/",
            {
                "patient": setup.patient.pk,
                "practitioner": setup.practitioner.pk,
                "service": setup.acupuncture.pk,
                "start": row["start"],
            },
            format="json",
        )
        assert response.status_code == 201, response.json()


def test_day_shifts_keep_their_wall_clock_hours_across_the_change(setup, receptionist_api):
    rows = slots(
        receptionist_api,
        setup,
        local(2027, 3, 13, 0, 0),
        local(2027, 3, 16, 0, 0),
        practitioner=setup.practitioner.pk,
    )
    firsts = {}
    for row in rows:
        firsts.setdefault(row["start"][:10], row["start"])
    assert firsts == {
        "2027-03-13": "2027-03-13T09:00:00-05:00",
        "2027-03-14": "2027-03-14T09:00:00-04:00",
        "2027-03-15": "2027-03-15T09:00:00-04:00",
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2027-03-02T00:00:00", "end": "2027-03-03T00:00:00-05:00"}, "start"),
        ({"start": "2027-03-03T00:00:00-05:00", "end": "2027-03-02T00:00:00-05:00"}, "end"),
        ({"start": "2027-03-01T00:00:00-05:00", "end": "2027-04-15T00:00:00-04:00"}, "end"),
        ({"start": "2027-03-02T00:00:00-05:00", "end": "2027-03-03T00:00:00-05:00", "service": 0}, "service"),
    ],
)
def test_bad_slot_queries_are_400(setup, receptionist_api, params, field):
    response = receptionist_api.get(URL, {"service": setup.massage.pk, **params})
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_another_clinics_service_is_not_found(setup, receptionist_api, other_clinic):
    foreign = ServiceFactory(clinic=other_clinic)
    response = receptionist_api.get(
        URL, {"service": foreign.pk, "start": "2027-03-02T00:00:00-05:00", "end": "2027-03-03T00:00:00-05:00"}
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"service": ["Not found."]}
