"""The booking API: create, bad input, actions, filters, history, series, roles."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clinic.models import SeriesConflictMode
from clinic.services import api_key_create
from sessions.models import Appointment
from sessions.services import appointment_book
from tests.factories import PatientFactory, RoomFactory, ServiceFactory
from tests.sessions.conftest import local

pytestmark = pytest.mark.django_db

URL = "/api/v1/appointments/"


def body(s, **overrides):
    data = {
        "patient": s.patient.pk,
        "practitioner": s.practitioner.pk,
        "service": s.massage.pk,
        "start": "2027-03-02T10:00:00-05:00",
    }
    data.update(overrides)
    return data


def test_booking_answers_201_with_times_in_the_clinic_zone(setup, receptionist_api):
    response = receptionist_api.post(URL, body(setup, start="2027-03-02T15:00:00Z"), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["start"] == "2027-03-02T10:00:00-05:00"
    assert data["end"] == "2027-03-02T11:00:00-05:00"
    assert data["status"] == "booked"
    assert data["room"] == setup.room1.pk
    assert Appointment.objects.get(pk=data["id"]).booked_by.username == "rita-reception"


def test_a_taken_time_is_409_with_the_conflicting_time(setup, receptionist_api):
    assert receptionist_api.post(URL, body(setup), format="json").status_code == 201
    response = receptionist_api.post(
        URL, body(setup, patient=setup.patient2.pk, start="2027-03-02T11:00:00-05:00"), format="json"
    )
    assert response.status_code == 409
    data = response.json()
    taken = Appointment.objects.get()
    assert data["detail"] == (
        "The practitioner is already booked from 10:00 to 11:15 on Tuesday 2 March 2027 (America/Toronto), "
        f"by appointment {taken.pk}."
    )
    assert data["errors"]["conflicts"][0]["appointment"] == str(taken.pk)
    assert data["errors"]["conflicts"][0]["start"] == "2027-03-02T10:00:00-05:00"
    assert Appointment.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"start": "2027-03-02T10:00:00"}, "start", "UTC offset"),
        ({"start": "2027-03-02T10:05:00-05:00"}, "start", "multiples of 15 minutes"),
        ({"start": "2027-03-02T07:00:00-05:00"}, "start", "working hours"),
        ({"start": "tomorrow"}, "start", "format"),
        ({"patient": 999999}, "patient", "Not found."),
        ({"service": "x"}, "service", "Not found."),
        ({"practitioner": None}, "practitioner", "null"),
    ],
)
def test_bad_input_is_400_with_field_errors_and_writes_nothing(setup, receptionist_api, overrides, field, message):
    response = receptionist_api.post(URL, body(setup, **overrides), format="json")
    assert response.status_code == 400, response.json()
    assert message in " ".join(response.json()["errors"][field])
    assert not Appointment.objects.exists()


def test_another_clinics_ids_are_not_found_field_errors(setup, receptionist_api, other_clinic):
    foreign_patient = PatientFactory(clinic=other_clinic)
    foreign_room = RoomFactory(clinic=other_clinic)
    response = receptionist_api.post(URL, body(setup, patient=foreign_patient.pk, room=foreign_room.pk), format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"patient": ["Not found."], "room": ["Not found."]}


def test_service_not_offered_and_inactive_practitioner_are_400(setup, receptionist_api):
    cupping = ServiceFactory(clinic=setup.clinic, name="Cupping")
    response = receptionist_api.post(URL, body(setup, service=cupping.pk), format="json")
    assert response.status_code == 400
    assert "does not offer Cupping" in response.json()["errors"]["service"][0]
    setup.practitioner.is_active = False
    setup.practitioner.save()
    response = receptionist_api.post(URL, body(setup), format="json")
    assert response.status_code == 400
    assert "inactive" in response.json()["errors"]["practitioner"][0]


def test_hours_override_needs_the_permission(setup, receptionist_api, therapist_api):
    late = body(setup, start="2027-03-02T18:00:00-05:00", hours_override=True, hours_override_reason="post-op")
    assert therapist_api.post(URL, late, format="json").status_code == 403
    response = receptionist_api.post(URL, late, format="json")
    assert response.status_code == 201
    assert response.json()["hours_override_reason"] == "post-op"


def test_actions_walk_the_states_and_a_wrong_one_is_409(setup, receptionist_api, time_machine):
    appointment_id = receptionist_api.post(URL, body(setup), format="json").json()["id"]
    base = f"{URL}{appointment_id}/"
    assert receptionist_api.post(f"{base}confirm/").json()["status"] == "confirmed"
    assert receptionist_api.post(f"{base}complete/").status_code == 409
    assert receptionist_api.post(f"{base}check-in/").json()["status"] == "arrived"
    assert receptionist_api.post(f"{base}complete/").json()["status"] == "completed"
    response = receptionist_api.post(f"{base}cancel/", {"reason": "x"}, format="json")
    assert response.status_code == 409
    assert response.json()["detail"] == "A completed appointment cannot become cancelled."


def test_cancel_records_party_reason_and_late_flag(setup, receptionist_api):
    appointment_id = receptionist_api.post(URL, body(setup, start="2027-03-01T12:00:00-05:00"), format="json").json()[
        "id"
    ]
    response = receptionist_api.post(
        f"{URL}{appointment_id}/cancel/", {"party": "patient", "reason": "flu"}, format="json"
    )
    assert response.status_code == 200
    data = response.json()
    assert (data["status"], data["late_cancellation"], data["cancellation_reason"]) == ("cancelled", True, "flu")
    assert receptionist_api.post(f"{URL}{appointment_id}/cancel/", {}, format="json").status_code == 409


def test_no_show_before_the_start_is_400(setup, receptionist_api):
    appointment_id = receptionist_api.post(URL, body(setup), format="json").json()["id"]
    response = receptionist_api.post(f"{URL}{appointment_id}/no-show/")
    assert response.status_code == 400


def test_reschedule_moves_and_history_shows_both_times(setup, receptionist_api):
    appointment_id = receptionist_api.post(URL, body(setup), format="json").json()["id"]
    response = receptionist_api.post(
        f"{URL}{appointment_id}/reschedule/",
        {"start": "2027-03-03T14:00:00-05:00", "practitioner": setup.other.pk, "reason": "asked"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["start"] == "2027-03-03T14:00:00-05:00"
    assert response.json()["practitioner"] == setup.other.pk
    history = receptionist_api.get(f"{URL}{appointment_id}/history/").json()
    assert [h["kind"] for h in history] == ["booked", "rescheduled"]
    assert history[1]["old_start"] == "2027-03-02T10:00:00-05:00"
    assert history[1]["new_start"] == "2027-03-03T14:00:00-05:00"
    assert history[1]["by"] == "rita-reception"


def test_reschedule_into_a_taken_time_is_409_and_changes_nothing(setup, receptionist_api):
    first = receptionist_api.post(URL, body(setup), format="json").json()["id"]
    receptionist_api.post(URL, body(setup, patient=setup.patient2.pk, start="2027-03-02T12:00:00-05:00"), format="json")
    response = receptionist_api.post(f"{URL}{first}/reschedule/", {"start": "2027-03-02T11:30:00-05:00"}, format="json")
    assert response.status_code == 409
    assert Appointment.objects.get(pk=first).start == local(2027, 3, 2, 10, 0)


def test_list_filters_by_range_practitioner_patient_and_status(setup, receptionist_api):
    kwargs = {"clinic": setup.clinic, "service": setup.massage}
    a = appointment_book(patient=setup.patient, practitioner=setup.practitioner, start=local(2027, 3, 2, 10), **kwargs)
    b = appointment_book(patient=setup.patient2, practitioner=setup.other, start=local(2027, 3, 3, 10), **kwargs)
    c = appointment_book(patient=setup.patient2, practitioner=setup.other, start=local(2027, 3, 4, 10), **kwargs)
    receptionist_api.post(f"{URL}{c.pk}/cancel/", {}, format="json")

    def ids(query):
        response = receptionist_api.get(f"{URL}?{query}")
        assert response.status_code == 200, response.json()
        return sorted(row["id"] for row in response.json()["results"])

    assert ids("") == [a.pk, b.pk, c.pk]
    assert ids("start_from=2027-03-03T00:00:00-05:00&start_to=2027-03-04T00:00:00-05:00") == [b.pk]
    assert ids(f"practitioner={setup.other.pk}") == [b.pk, c.pk]
    assert ids(f"patient={setup.patient.pk}") == [a.pk]
    assert ids("status=cancelled") == [c.pk]
    assert ids("status=booked&status=confirmed") == [a.pk, b.pk]


def test_list_query_budget(setup, receptionist_api):
    for day in range(2, 6):
        appointment_book(
            clinic=setup.clinic,
            patient=setup.patient,
            practitioner=setup.practitioner,
            service=setup.massage,
            start=local(2027, 3, day, 10),
        )
    with CaptureQueriesContext(connection) as queries:
        response = receptionist_api.get(URL)
    assert response.status_code == 200
    # membership (clinic access), the page of appointments; no query per row.
    assert len(queries) == 2, [q["sql"] for q in queries]


def test_other_clinics_appointment_is_404(setup, other_api, receptionist_api):
    appointment_id = receptionist_api.post(URL, body(setup), format="json").json()["id"]
    assert other_api.get(f"{URL}{appointment_id}/").status_code == 404
    assert other_api.post(f"{URL}{appointment_id}/cancel/", {}, format="json").status_code == 404


def test_api_key_needs_the_appointments_scope(setup, api):
    _, reader = api_key_create(clinic=setup.clinic, name="widget", scopes=["appointments:read"])
    _, writer = api_key_create(clinic=setup.clinic, name="widget2", scopes=["appointments:write"])
    assert api.post(URL, body(setup), format="json", HTTP_AUTHORIZATION=f"Bearer {reader}").status_code == 403
    response = api.post(URL, body(setup), format="json", HTTP_AUTHORIZATION=f"Bearer {writer}")
    assert response.status_code == 201
    late = body(setup, start="2027-03-03T18:00:00-05:00", hours_override=True, hours_override_reason="x")
    assert api.post(URL, late, format="json", HTTP_AUTHORIZATION=f"Bearer {writer}").status_code == 403


def series_body(s, **overrides):
    data = body(s, occurrences=4, interval_days=7)
    data.update(overrides)
    return data


def test_series_books_every_occurrence_at_the_same_wall_time_across_dst(setup, receptionist_api):
    # 2027-03-14 is the spring-forward Sunday in Toronto: the 10:00 weekly slot keeps 10:00.
    response = receptionist_api.post(f"{URL}series/", series_body(setup), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert [a["start"] for a in data["booked"]] == [
        "2027-03-02T10:00:00-05:00",
        "2027-03-09T10:00:00-05:00",
        "2027-03-16T10:00:00-04:00",
        "2027-03-23T10:00:00-04:00",
    ]
    assert data["skipped"] == []
    assert Appointment.objects.filter(series=data["series"]).count() == 4


def test_series_conflict_fails_the_whole_series_by_default(setup, receptionist_api):
    appointment_book(
        clinic=setup.clinic,
        patient=setup.patient2,
        practitioner=setup.practitioner,
        service=setup.massage,
        start=local(2027, 3, 16, 10, 30),
    )
    response = receptionist_api.post(f"{URL}series/", series_body(setup), format="json")
    assert response.status_code == 409
    occurrences = response.json()["errors"]["occurrences"]
    assert [o["start"] for o in occurrences] == ["2027-03-16T10:00:00-04:00"]
    assert Appointment.objects.count() == 1


def test_series_in_skip_mode_books_the_rest_and_lists_the_skipped(setup, receptionist_api):
    setup.clinic.series_conflict_mode = SeriesConflictMode.SKIP
    setup.clinic.save()
    appointment_book(
        clinic=setup.clinic,
        patient=setup.patient2,
        practitioner=setup.practitioner,
        service=setup.massage,
        start=local(2027, 3, 16, 9, 30),
    )
    response = receptionist_api.post(
        f"{URL}series/", series_body(setup, interval_days=1, start="2027-03-15T09:00:00-04:00"), format="json"
    )
    assert response.status_code == 201
    data = response.json()
    assert [a["start"] for a in data["booked"]] == [
        "2027-03-15T09:00:00-04:00",
        "2027-03-17T09:00:00-04:00",
        "2027-03-18T09:00:00-04:00",
    ]
    assert [s["start"] for s in data["skipped"]] == ["2027-03-16T09:00:00-04:00"]
    assert data["skipped"][0]["conflicts"][0]["start"] == "2027-03-16T09:30:00-04:00"
    assert data["mode"] == "skip"


def test_series_bad_count_is_400(setup, receptionist_api):
    response = receptionist_api.post(f"{URL}series/", series_body(setup, occurrences=1), format="json")
    assert response.status_code == 400
    assert "occurrences" in response.json()["errors"]
    assert not Appointment.objects.exists()
