"""The services emit their webhook events in the transaction of the change: patients,
appointments, intake submissions and signed notes. Payloads carry ids and non-clinical fields
only; a change that rolls back leaves no event and no delivery."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db import transaction

from clinic.models import WebhookDelivery, WebhookEvent, WebhookEventType
from clinic.webhooks.delivery import webhook_endpoint_create
from intake.services import intake_submit
from patients.models import Patient
from patients.services import patient_archive, patient_create, patient_merge, patient_unarchive, patient_update
from sessions.models import CancelledBy
from sessions.services import (
    appointment_book,
    appointment_cancel,
    appointment_confirm,
    appointment_reschedule,
    note_sign,
)
from tests.factories import (
    LocationFactory,
    PatientFactory,
    RoomFactory,
    ServiceFactory,
    TreatmentSessionFactory,
    clean_intake_answers,
    intake_link,
)
from tests.sessions.conftest import NOW, local, weekday_hours

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(clinic):
    return webhook_endpoint_create(clinic=clinic, url="https://hooks.example.com/in", events=WebhookEventType.values)[0]


def events(event_type: str) -> list[dict]:
    return [e.payload for e in WebhookEvent.objects.filter(type=event_type).order_by("id")]


def rolled_back(change):
    """Run `change` in a transaction that is then rolled back, as when a later step fails."""
    with transaction.atomic():
        change()
        transaction.set_rollback(True)


@pytest.fixture
def desk(time_machine, clinic, practitioner):
    time_machine.move_to(NOW, tick=True)
    location = LocationFactory(clinic=clinic)
    massage = ServiceFactory(clinic=clinic, duration_minutes=60, buffer_minutes=15)
    room = RoomFactory(clinic=clinic, location=location)
    room.services.add(massage)
    practitioner.services.add(massage)
    weekday_hours(clinic, practitioner, location)
    return SimpleNamespace(
        clinic=clinic, practitioner=practitioner, massage=massage, patient=PatientFactory(clinic=clinic)
    )


def book(desk):
    return appointment_book(
        clinic=desk.clinic,
        patient=desk.patient,
        practitioner=desk.practitioner,
        service=desk.massage,
        start=local(2027, 3, 4, 10),
    )


# --- patients ------------------------------------------------------------------------------


def test_creating_a_patient_emits_patient_created_with_a_delivery(clinic, endpoint):
    patient = patient_create(clinic=clinic, data={"given_name": "Maya", "family_name": "Singh"})
    assert events("patient.created") == [{"patient_id": patient.pk}]
    event = WebhookEvent.objects.get(type="patient.created")
    assert WebhookDelivery.objects.filter(event=event, endpoint=endpoint).count() == 1


def test_a_patient_creation_that_rolls_back_emits_nothing(clinic, endpoint):
    rolled_back(lambda: patient_create(clinic=clinic, data={"given_name": "Maya", "family_name": "Singh"}))
    assert not WebhookEvent.objects.exists()
    assert not WebhookDelivery.objects.exists()


def test_updating_archiving_and_unarchiving_a_patient_emit_patient_updated(clinic):
    patient = PatientFactory(clinic=clinic)
    patient_update(patient=patient, data={"preferred_name": "May"})
    patient_archive(patient=patient)
    patient_archive(patient=patient)  # already archived: no change, no event
    patient_unarchive(patient=patient)
    assert events("patient.updated") == [{"patient_id": patient.pk}] * 3


def test_merging_emits_patient_updated_for_both_records(clinic):
    source, target = PatientFactory(clinic=clinic), PatientFactory(clinic=clinic)
    patient_merge(source=source, target=target)
    assert events("patient.updated") == [{"patient_id": source.pk}, {"patient_id": target.pk}]


# --- appointments ----------------------------------------------------------------------------


def test_booking_emits_appointment_created_with_ids_and_times(desk, endpoint):
    appointment = book(desk)
    assert events("appointment.created") == [
        {
            "appointment_id": appointment.pk,
            "patient_id": desk.patient.pk,
            "practitioner_id": desk.practitioner.pk,
            "service_id": desk.massage.pk,
            "start": "2027-03-04T15:00:00Z",
            "end": "2027-03-04T16:00:00Z",
            "status": "booked",
        }
    ]
    assert WebhookDelivery.objects.filter(endpoint=endpoint, event__type="appointment.created").count() == 1


def test_a_booking_that_rolls_back_emits_nothing(desk, endpoint):
    rolled_back(lambda: book(desk))
    assert not WebhookEvent.objects.exists()
    assert not WebhookDelivery.objects.exists()


def test_rescheduling_and_confirming_emit_appointment_updated(desk):
    appointment = book(desk)
    appointment_reschedule(appointment=appointment, start=local(2027, 3, 5, 11))
    appointment_confirm(appointment=appointment)
    assert [(e["start"], e["status"]) for e in events("appointment.updated")] == [
        ("2027-03-05T16:00:00Z", "booked"),
        ("2027-03-05T16:00:00Z", "confirmed"),
    ]


def test_cancelling_emits_appointment_cancelled(desk):
    appointment = book(desk)
    appointment_cancel(appointment=appointment, party=CancelledBy.PATIENT)
    [payload] = events("appointment.cancelled")
    assert (payload["appointment_id"], payload["status"]) == (appointment.pk, "cancelled")
    assert not events("appointment.updated")


# --- intake and notes ------------------------------------------------------------------------


def test_submitting_an_intake_emits_intake_submitted_without_answers(clinic):
    patient = PatientFactory(clinic=clinic)
    submission = intake_submit(link=intake_link(patient), answers=clean_intake_answers())
    assert events("intake.submitted") == [{"submission_id": submission.pk, "patient_id": patient.pk}]


def test_signing_a_note_emits_note_signed_without_its_content(clinic, practitioner, therapist):
    note = TreatmentSessionFactory(clinic=clinic, practitioner=practitioner)
    note_sign(session=note, actor=therapist)
    assert events("note.signed") == [
        {"note_id": note.pk, "patient_id": note.patient_id, "practitioner_id": practitioner.pk}
    ]


def test_a_signing_that_rolls_back_emits_nothing(clinic, practitioner, therapist):
    note = TreatmentSessionFactory(clinic=clinic, practitioner=practitioner)
    rolled_back(lambda: note_sign(session=note, actor=therapist))
    assert not WebhookEvent.objects.filter(type="note.signed").exists()


# --- CSV import --------------------------------------------------------------------------------


def test_an_import_creates_each_patient_through_the_service_and_emits_patient_created(clinic):
    from patients.csv_io import patients_import_csv

    csv_text = "given_name,family_name,email\nAda,Moss,ada@example.com\nBen,Stone,\n"
    report = patients_import_csv(clinic=clinic, lines=csv_text.splitlines(keepends=True))
    assert report.created == 2
    ids = sorted(Patient.objects.filter(clinic=clinic).values_list("pk", flat=True))
    assert sorted(e["patient_id"] for e in events("patient.created")) == ids


def test_an_import_with_a_duplicate_imports_nothing_and_names_the_line(clinic):
    from patients.csv_io import ImportRefused, patients_import_csv

    existing = PatientFactory(clinic=clinic, email="ada@example.com")
    csv_text = (
        "given_name,family_name,email\nBen,Stone,ben@example.com\nAda,Moss,ada@example.com\nBen,Stone,ben@example.com\n"
    )
    with pytest.raises(ImportRefused) as refused:
        patients_import_csv(clinic=clinic, lines=csv_text.splitlines(keepends=True))
    assert refused.value.report.errors == {
        3: {"duplicate": [f"Probably the same person as patient #{existing.pk}."]},
        4: {"duplicate": ["Probably the same person as the patient on line 2."]},
    }
    assert list(Patient.objects.filter(clinic=clinic)) == [existing]
    assert not WebhookEvent.objects.exists()
