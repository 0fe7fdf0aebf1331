"""Real parallel bookings on PostgreSQL: threads, each with its own database connection,
released together by a barrier. Exactly one booking wins; every other answer is a clean
409 (API) or form error (admin) naming the winner's time; never a 500, never a second row."""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from django.test import Client
from rest_framework.test import APIClient

from sessions.models import Appointment
from tests.factories import PatientFactory, PractitionerFactory
from tests.sessions.conftest import local, weekday_hours

pytestmark = pytest.mark.django_db(transaction=True)

PARALLEL = 32


def in_parallel(count: int, work) -> list:
    """Run work(i) in `count` threads at once; return each result (or the exception raised)."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=60)
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


def test_parallel_api_bookings_of_one_practitioner_make_one_appointment(setup, receptionist):
    patients = [PatientFactory(clinic=setup.clinic).pk for _ in range(PARALLEL)]
    start = local(2027, 3, 2, 10, 0)

    def book(i):
        response = _api(receptionist).post(
            "/api/v1/appointments/",
            {
                "patient": patients[i],
                "practitioner": setup.practitioner.pk,
                "service": setup.massage.pk,
                # Different rooms where possible: only the practitioner is contended.
                "room": (setup.room1 if i % 2 else setup.room2).pk,
                "start": start.isoformat(),
            },
            format="json",
        )
        return response.status_code, response.json()

    results = in_parallel(PARALLEL, book)
    codes = sorted(code for code, _ in results)
    assert codes == [201] + [409] * (PARALLEL - 1)
    assert Appointment.objects.count() == 1
    for code, body in results:
        if code == 409:
            assert body["detail"].startswith("The practitioner is already booked from 10:00 to 11:15 on Tuesday")


def test_parallel_api_bookings_of_one_room_make_one_appointment(setup, receptionist):
    practitioners = []
    for i in range(PARALLEL):
        p = PractitionerFactory(clinic=setup.clinic, display_name=f"P{i}")
        p.services.add(setup.massage)
        weekday_hours(setup.clinic, p, setup.location, days=[1])
        practitioners.append(p.pk)
    patients = [PatientFactory(clinic=setup.clinic).pk for _ in range(PARALLEL)]
    start = local(2027, 3, 2, 10, 0)

    def book(i):
        response = _api(receptionist).post(
            "/api/v1/appointments/",
            {
                "patient": patients[i],
                "practitioner": practitioners[i],
                "service": setup.massage.pk,
                "room": setup.room1.pk,
                "start": start.isoformat(),
            },
            format="json",
        )
        return response.status_code, response.json()

    results = in_parallel(PARALLEL, book)
    assert sorted(code for code, _ in results) == [201] + [409] * (PARALLEL - 1)
    assert Appointment.objects.filter(room=setup.room1).count() == 1
    conflicts = [body["errors"]["conflicts"][0] for code, body in results if code == 409]
    assert {(c["resource"], c["start"]) for c in conflicts} == {("room", "2027-03-02T10:00:00-05:00")}


def test_parallel_admin_bookings_make_one_appointment(setup, owner):
    patients = [PatientFactory(clinic=setup.clinic).pk for _ in range(PARALLEL)]

    def book(i):
        client = Client()
        client.force_login(owner)
        response = client.post(
            "/admin/treatment_sessions/appointment/add/",
            {
                "clinic": setup.clinic.pk,
                "patient": patients[i],
                "practitioner": setup.practitioner.pk,
                "service": setup.massage.pk,
                "start_0": "2027-03-02",
                "start_1": "10:00:00",
                "notes": "",
                "changes-TOTAL_FORMS": "0",
                "changes-INITIAL_FORMS": "0",
                "changes-MIN_NUM_FORMS": "0",
                "changes-MAX_NUM_FORMS": "1000",
            },
        )
        return response.status_code, response.content.decode()

    results = in_parallel(PARALLEL, book)
    codes = [code for code, _ in results]
    assert codes.count(302) == 1  # the winner is redirected to the list
    assert codes.count(200) == PARALLEL - 1  # the form again, with the error
    refused = [html for code, html in results if code == 200]
    clash = "is already booked from 10:00 to 11:15 on Tuesday 2 March 2027 (America/Toronto)"
    assert all(clash in html for html in refused)
    assert Appointment.objects.count() == 1


def test_parallel_accepts_of_one_freed_slot_book_it_once(setup, receptionist):
    from sessions.models import OfferStatus, WaitlistOffer
    from sessions.services import WAITLIST_OFFERS_PER_SLOT, appointment_book, appointment_cancel
    from tests.factories import WaitlistEntryFactory

    appointment = appointment_book(
        clinic=setup.clinic,
        patient=setup.patient,
        practitioner=setup.practitioner,
        service=setup.massage,
        start=local(2027, 3, 2, 10, 0),
    )
    for _ in range(WAITLIST_OFFERS_PER_SLOT):
        WaitlistEntryFactory(
            clinic=setup.clinic,
            patient=PatientFactory(clinic=setup.clinic),
            service=setup.massage,
            window_start=local(2027, 3, 1, 0, 0),
            window_end=local(2027, 3, 9, 0, 0),
        )
    appointment_cancel(appointment=appointment)
    offers = list(WaitlistOffer.objects.values_list("pk", flat=True))
    assert len(offers) == WAITLIST_OFFERS_PER_SLOT

    def accept(i):
        return _api(receptionist).post(f"/api/v1/waitlist-offers/{offers[i]}/accept/").status_code

    assert sorted(in_parallel(len(offers), accept)) == [200] + [409] * (len(offers) - 1)
    assert Appointment.objects.active().count() == 1
    assert WaitlistOffer.objects.filter(status=OfferStatus.ACCEPTED).count() == 1
