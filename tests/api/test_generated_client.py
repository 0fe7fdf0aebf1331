"""A front-desk journey through a Python client generated from /api/schema/ by
openapi-python-client, a generator no one here wrote: if the schema lies about a parameter,
a body or a response, the generated code refuses it or parses it wrong and this test fails.

The client is generated in the test (as an integrator would, from the served schema), then
drives a live server: find a patient, list free slots, book, reschedule, cancel, and read the
patient's messages.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import subprocess
import sys
import zoneinfo
from pathlib import Path

import pytest
import requests
from django.utils import timezone

from clinic.services import api_key_create
from sessions.models import Appointment, AppointmentStatus
from tests.factories import PatientFactory, bookable_service

pytestmark = [pytest.mark.slow, pytest.mark.processes, pytest.mark.django_db(transaction=True)]

PACKAGE = "clinic_client"


@pytest.fixture
def generated_client(live_server, tmp_path):
    """The client package generated from the live server's schema, importable for this test."""
    schema = requests.get(
        live_server.url + "/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"}, timeout=30
    )
    assert schema.status_code == 200
    assert schema.headers["Content-Type"].startswith("application/vnd.oai.openapi+json")
    (tmp_path / "schema.json").write_bytes(schema.content)
    venv_bin = str(Path(sys.executable).parent)  # the generator formats its output with ruff
    generated = subprocess.run(
        [
            os.path.join(venv_bin, "openapi-python-client"), "generate", "--path", str(tmp_path / "schema.json"),
            "--meta", "none", "--output-path", str(tmp_path / PACKAGE),
        ],
        env={**os.environ, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "")},
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stdout + generated.stderr
    # The generator reports any part of the schema it could not turn into code.
    assert "Warning" not in generated.stdout + generated.stderr, generated.stdout + generated.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.fixture
def desk(clinic, practitioner):
    service = bookable_service(clinic, practitioner, buffer_minutes=0)
    patient = PatientFactory(
        clinic=clinic, given_name="Maya", family_name="Singh", email="maya.singh@example.com", email_consent=True
    )
    PatientFactory(clinic=clinic, given_name="Noah", family_name="Tremblay")
    scopes = ["patients:read", "appointments:read", "appointments:write", "messages:read"]
    _, key = api_key_create(clinic=clinic, name="front desk app", scopes=scopes)
    return {"service": service, "patient": patient, "key": key, "zone": zoneinfo.ZoneInfo(clinic.time_zone)}


def test_a_generated_client_runs_the_front_desk_journey(generated_client, live_server, desk, practitioner):
    # Imported here: the package exists only once the fixture has generated it.
    from clinic_client import AuthenticatedClient
    from clinic_client.api.appointments import (
        appointments_cancel,
        appointments_create,
        appointments_reschedule,
        appointments_retrieve,
    )
    from clinic_client.api.messages import messages_list
    from clinic_client.api.patients import patients_list
    from clinic_client.api.slots import slots_retrieve
    from clinic_client.models import (
        AppointmentBookRequest,
        AppointmentCancelRequest,
        AppointmentRescheduleRequest,
        CancelledByEnum,
    )

    with AuthenticatedClient(
        base_url=live_server.url, token=desk["key"], raise_on_unexpected_status=True
    ) as client:  # the journey below runs in one HTTP session
        # Find the patient by name.
        found = patients_list.sync(client=client, q="Singh")
        assert [(p.given_name, p.family_name) for p in found.results] == [("Maya", "Singh")]
        patient = found.results[0]

        # Free slots for a day next week, in the clinic's zone.
        day = timezone.localdate(timezone=desk["zone"]) + dt.timedelta(days=7)
        start = dt.datetime.combine(day, dt.time(0), tzinfo=desk["zone"])
        slots = slots_retrieve.sync(
            client=client, service=desk["service"].pk, practitioner=practitioner.pk, start=start,
            end=start + dt.timedelta(days=1),
        )  # fmt: skip
        starts = [slot.start for slot in slots.results]
        assert len(starts) >= 2
        assert starts[0].astimezone(desk["zone"]).time() == dt.time(9)

        # Book the first free slot.
        booked = appointments_create.sync(
            client=client,
            body=AppointmentBookRequest(
                patient=patient.id, practitioner=practitioner.pk, service=desk["service"].pk, start=starts[0]
            ),
        )
        assert booked.start == starts[0]
        appointment = Appointment.objects.get(pk=booked.id)
        assert appointment.patient_id == patient.id

        # The booked time is no longer offered; move the visit to another free one.
        slots = slots_retrieve.sync(
            client=client, service=desk["service"].pk, practitioner=practitioner.pk, start=start,
            end=start + dt.timedelta(days=1),
        )  # fmt: skip
        assert starts[0] not in [slot.start for slot in slots.results]
        later = slots.results[-1].start
        moved = appointments_reschedule.sync(booked.id, client=client, body=AppointmentRescheduleRequest(start=later))
        assert moved.start == later
        assert appointments_retrieve.sync(booked.id, client=client).start == later

        # Cancel it at the patient's request.
        cancelled = appointments_cancel.sync(
            booked.id, client=client, body=AppointmentCancelRequest(reason="Flu", party=CancelledByEnum.PATIENT)
        )
        assert cancelled.status.value == AppointmentStatus.CANCELLED
        appointment.refresh_from_db()
        assert appointment.status == AppointmentStatus.CANCELLED
        assert appointment.cancellation_reason == "Flu"

        # The patient's messages: the booking's confirmation among them.
        messages = messages_list.sync(client=client, patient=patient.id)
        kinds = {message.kind.value if hasattr(message.kind, "value") else message.kind for message in messages.results}
        assert "appointment_confirmation" in kinds
