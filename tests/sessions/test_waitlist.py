"""Waitlist: a cancellation offers the freed slot to matching waiting patients (oldest first);
the first to accept gets it; offers expire; the sweeper is safe to run twice."""

from __future__ import annotations

import datetime as dt

import pytest

from sessions.models import Appointment, OfferStatus, WaitlistEntry, WaitlistOffer, WaitlistStatus
from sessions.services import (
    WAITLIST_OFFERS_PER_SLOT,
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
    waitlist_offer_accept,
    waitlist_offer_link,
)
from sessions.tasks import expire_waitlist_offers
from tests.factories import PatientFactory, WaitlistEntryFactory
from tests.sessions.conftest import local

pytestmark = pytest.mark.django_db


def _book(setup, start, patient=None, practitioner=None):
    return appointment_book(
        clinic=setup.clinic,
        patient=patient or setup.patient,
        practitioner=practitioner or setup.practitioner,
        service=setup.massage,
        start=start,
    )


def _wait(setup, **kwargs):
    values = {
        "clinic": setup.clinic,
        "patient": PatientFactory(clinic=setup.clinic),
        "service": setup.massage,
        "window_start": local(2027, 3, 1, 0, 0),
        "window_end": local(2027, 3, 10, 0, 0),
    }
    values.update(kwargs)
    return WaitlistEntryFactory(**values)


def test_a_cancellation_offers_the_slot_to_the_oldest_matching_entries(setup):
    appointment = _book(setup, local(2027, 3, 2, 10, 0))
    matching = [_wait(setup) for _ in range(WAITLIST_OFFERS_PER_SLOT + 1)]
    wants_other = _wait(setup, practitioner=setup.other)
    too_late = _wait(setup, window_start=local(2027, 3, 5, 0, 0))
    other_service = _wait(setup, service=setup.acupuncture)
    same_patient = _wait(setup, patient=setup.patient)

    appointment_cancel(appointment=appointment)

    offered = set(WaitlistOffer.objects.values_list("entry_id", flat=True))
    assert offered == {e.pk for e in matching[:WAITLIST_OFFERS_PER_SLOT]}
    assert not offered & {wants_other.pk, too_late.pk, other_service.pk, same_patient.pk}
    offer = WaitlistOffer.objects.first()
    assert offer.start == local(2027, 3, 2, 10, 0)
    assert offer.practitioner == setup.practitioner
    # Two hours from now (the clock ticks, so to the minute).
    assert local(2027, 3, 1, 10, 0) <= offer.expires_at < local(2027, 3, 1, 10, 1)
    assert offer.freed_by_id == appointment.pk


def test_a_reschedule_offers_the_old_time(setup):
    appointment = _book(setup, local(2027, 3, 2, 10, 0))
    entry = _wait(setup)
    appointment_reschedule(appointment=appointment, start=local(2027, 3, 3, 10, 0))
    assert WaitlistOffer.objects.get().entry == entry


def test_first_to_accept_gets_it_and_the_others_are_told_it_is_taken(setup, receptionist_api):
    appointment = _book(setup, local(2027, 3, 2, 10, 0))
    first, second = _wait(setup), _wait(setup)
    appointment_cancel(appointment=appointment)
    offer_first = WaitlistOffer.objects.get(entry=first)
    offer_second = WaitlistOffer.objects.get(entry=second)

    response = receptionist_api.post(f"/api/v1/waitlist-offers/{offer_second.pk}/accept/")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "accepted"
    second.refresh_from_db()
    assert second.status == WaitlistStatus.BOOKED
    assert second.appointment.start == local(2027, 3, 2, 10, 0)
    assert second.appointment.patient == second.patient

    response = receptionist_api.post(f"/api/v1/waitlist-offers/{offer_first.pk}/accept/")
    assert response.status_code == 409
    offer_first.refresh_from_db()
    assert offer_first.status == OfferStatus.TAKEN
    first.refresh_from_db()
    assert first.status == WaitlistStatus.WAITING


def test_an_offer_whose_slot_was_booked_directly_is_taken(setup):
    appointment = _book(setup, local(2027, 3, 2, 10, 0))
    entry = _wait(setup)
    appointment_cancel(appointment=appointment)
    _book(setup, local(2027, 3, 2, 10, 30), patient=setup.patient2)
    offer = waitlist_offer_accept(offer=WaitlistOffer.objects.get(entry=entry))
    assert offer.status == OfferStatus.TAKEN
    assert offer.appointment is None


def test_offers_expire_and_the_sweeper_runs_twice_safely(setup, receptionist_api, time_machine):
    appointment = _book(setup, local(2027, 3, 2, 10, 0))
    entry = _wait(setup, window_end=local(2027, 3, 3, 0, 0))
    appointment_cancel(appointment=appointment)
    offer = WaitlistOffer.objects.get()
    time_machine.move_to(local(2027, 3, 1, 10, 1))
    assert expire_waitlist_offers() == {"offers_expired": 1, "entries_lapsed": 0}
    assert expire_waitlist_offers() == {"offers_expired": 0, "entries_lapsed": 0}
    offer.refresh_from_db()
    assert offer.status == OfferStatus.EXPIRED
    response = receptionist_api.post(f"/api/v1/waitlist-offers/{offer.pk}/accept/")
    assert response.status_code == 410
    time_machine.move_to(local(2027, 3, 3, 0, 1))
    assert expire_waitlist_offers() == {"offers_expired": 0, "entries_lapsed": 1}
    assert expire_waitlist_offers() == {"offers_expired": 0, "entries_lapsed": 0}
    entry.refresh_from_db()
    assert entry.status == WaitlistStatus.LAPSED


def test_accepting_after_expiry_before_the_sweeper_is_410(setup, receptionist_api, time_machine):
    appointment = _book(setup, local(2027, 3, 2, 10, 0))
    _wait(setup)
    appointment_cancel(appointment=appointment)
    offer = WaitlistOffer.objects.get()
    time_machine.move_to(local(2027, 3, 1, 10, 1))
    response = receptionist_api.post(f"/api/v1/waitlist-offers/{offer.pk}/accept/")
    assert response.status_code == 410
    offer.refresh_from_db()
    assert offer.status == OfferStatus.EXPIRED


def test_waitlist_api_creates_validates_and_withdraws(setup, receptionist_api, other_clinic):
    url = "/api/v1/waitlist/"
    data = {
        "patient": setup.patient.pk,
        "service": setup.massage.pk,
        "practitioner": setup.practitioner.pk,
        "window_start": "2027-03-02T00:00:00-05:00",
        "window_end": "2027-03-09T00:00:00-05:00",
    }
    response = receptionist_api.post(url, data, format="json")
    assert response.status_code == 201, response.json()
    entry_id = response.json()["id"]
    assert response.json()["status"] == "waiting"
    bad = receptionist_api.post(url, {**data, "window_end": "2027-03-01T00:00:00-05:00"}, format="json")
    assert bad.status_code == 400
    assert "window_end" in bad.json()["errors"]
    naive = receptionist_api.post(url, {**data, "window_start": "2027-03-02T00:00:00"}, format="json")
    assert naive.status_code == 400
    assert receptionist_api.post(f"{url}{entry_id}/withdraw/").json()["status"] == "withdrawn"
    assert receptionist_api.post(f"{url}{entry_id}/withdraw/").status_code == 409
    assert WaitlistEntry.objects.count() == 1


def test_a_slot_in_the_past_is_not_offered(setup, time_machine):
    appointment = _book(setup, local(2027, 3, 1, 9, 0))
    _wait(setup)
    time_machine.move_to(local(2027, 3, 1, 9, 30))
    appointment_cancel(appointment=appointment)
    assert not WaitlistOffer.objects.exists()
    assert dt.timedelta(0) < local(2027, 3, 1, 9, 30) - appointment.start


def test_the_patients_signed_link_shows_the_offer_and_books_it(setup, client):
    appointment = _book(setup, local(2027, 3, 2, 10, 0))
    first, second = _wait(setup), _wait(setup)
    appointment_cancel(appointment=appointment)
    link_first = waitlist_offer_link(WaitlistOffer.objects.get(entry=first)).split("127.0.0.1:8000", 1)[1]
    link_second = waitlist_offer_link(WaitlistOffer.objects.get(entry=second)).split("127.0.0.1:8000", 1)[1]

    page = client.get(link_first).content.decode()
    assert "Tuesday 2 March 2027 at 10:00" in page
    assert "Book this time" in page
    assert "Booked." in client.post(link_first).content.decode()
    first.refresh_from_db()
    assert first.status == WaitlistStatus.BOOKED
    assert "someone else took this time first" in client.post(link_second).content.decode()
    assert Appointment.objects.active().count() == 1


def test_a_tampered_offer_link_is_404(setup, client):
    appointment = _book(setup, local(2027, 3, 2, 10, 0))
    _wait(setup)
    appointment_cancel(appointment=appointment)
    link = waitlist_offer_link(WaitlistOffer.objects.get()).split("127.0.0.1:8000", 1)[1]
    assert client.get(link.replace("/offers/", "/offers/x")).status_code == 404
    assert client.post("/waitlist/offers/not-signed/").status_code == 404
