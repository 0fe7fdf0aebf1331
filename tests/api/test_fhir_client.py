"""A FHIR client library no one here wrote (fhirpy, from PyPI) drives the server over HTTP, as
an integrator's code would: discover it through its CapabilityStatement, find a patient by
name, read them, book a free slot for them, see a second booking of that slot refused with an
OperationOutcome, and cancel the appointment by updating its status."""

from __future__ import annotations

import datetime as dt

import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome

from clinic.services import api_key_create
from sessions.models import Appointment, AppointmentStatus
from tests.factories import PatientFactory, bookable_service
from tests.fhir_validation import assert_valid_fhir
from tests.sessions.conftest import NOW

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def front_desk(clinic, practitioner, time_machine):
    """Acupuncture with Theo every day 09:00-17:00, a patient, and a key as an integration holds it."""
    time_machine.move_to(NOW, tick=True)
    service = bookable_service(clinic, practitioner, name="Acupuncture")
    patient = PatientFactory(clinic=clinic, given_name="Ngozi", family_name="Okafor")
    PatientFactory(clinic=clinic, given_name="Ngaio", family_name="Marsh")
    _, key = api_key_create(
        clinic=clinic, name="booking app", scopes=["patients:read", "appointments:read", "appointments:write"]
    )
    return service, patient, key


def test_a_fhir_client_discovers_searches_reads_books_and_cancels(live_server, front_desk):
    service, patient, key = front_desk
    client = SyncFHIRClient(f"{live_server.url}/fhir/R4", authorization=f"Bearer {key}")

    # Discover: the server says it books appointments and finds patients by name.
    statement = client.execute("metadata", method="get")
    assert_valid_fhir(dict(statement), "CapabilityStatement")
    resources = {entry["type"]: entry for entry in statement["rest"][0]["resource"]}
    assert {"code": "create"} in resources["Appointment"]["interaction"]
    assert "name" in {param["name"] for param in resources["Patient"]["searchParam"]}

    # Search a patient by name, then read them.
    [found] = client.resources("Patient").search(name="okafor").fetch()
    assert found.id == str(patient.pk)
    read = client.reference("Patient", found.id).to_resource()
    assert read["name"][0]["given"] == ["Ngozi"]

    # A free slot tomorrow, booked for the patient.
    tomorrow = (NOW + dt.timedelta(days=1)).date()
    slots = (
        client.resources("Slot")
        .search(service=service.pk, start__ge=str(tomorrow), start__lt=str(tomorrow + dt.timedelta(days=1)))
        .fetch()
    )
    assert slots, "no free slot tomorrow"
    slot = slots[0]
    appointment = client.resource(
        "Appointment",
        status="booked",
        slot=[{"reference": f"Slot/{slot.id}"}],
        participant=[{"actor": read.to_reference(), "status": "accepted"}],
    )
    appointment.save()
    assert appointment.id is not None
    assert appointment["status"] == "booked"
    assert dt.datetime.fromisoformat(appointment["start"]) == dt.datetime.fromisoformat(slot["start"])

    # The same slot again: the library raises the server's OperationOutcome naming the clash.
    again = client.resource(
        "Appointment",
        status="booked",
        slot=[{"reference": f"Slot/{slot.id}"}],
        participant=[{"actor": read.to_reference(), "status": "accepted"}],
    )
    with pytest.raises(OperationOutcome) as refused:
        again.save()
    issues = refused.value.resource["issue"]
    assert {issue["code"] for issue in issues} == {"conflict"}
    assert any(f"Appointment/{appointment.id}" in issue["diagnostics"] for issue in issues)

    # Cancel: update the status and save the whole resource back.
    appointment["status"] = "cancelled"
    appointment["cancelationReason"] = {"text": "Patient unwell"}
    appointment.save()
    assert client.reference("Appointment", appointment.id).to_resource()["status"] == "cancelled"
    mine = client.resources("Appointment").search(patient=f"Patient/{patient.pk}", status="cancelled").fetch()
    assert [a.id for a in mine] == [appointment.id]

    stored = Appointment.objects.get(pk=int(appointment.id))
    assert stored.status == AppointmentStatus.CANCELLED
    assert stored.cancellation_reason == "Patient unwell"
    assert stored.booked_by is None  # booked by an integration's key, not a person
