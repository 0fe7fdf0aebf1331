"""Shared fixtures of the messaging tests."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.factories import LocationFactory, PatientFactory, RoomFactory, ServiceFactory
from tests.sessions.conftest import NOW, weekday_hours


@pytest.fixture
def desk(time_machine, clinic, practitioner):
    """Monday 1 March 2027, 08:00 in Toronto; Theo works 09:00-17:00 every day."""
    time_machine.move_to(NOW, tick=True)
    location = LocationFactory(clinic=clinic, name="Main street")
    massage = ServiceFactory(clinic=clinic, name="Remedial massage", duration_minutes=60, buffer_minutes=15)
    room = RoomFactory(clinic=clinic, location=location, name="Room 1")
    room.services.add(massage)
    practitioner.services.add(massage)
    weekday_hours(clinic, practitioner, location)
    return SimpleNamespace(
        clinic=clinic, practitioner=practitioner, massage=massage, patient=PatientFactory(clinic=clinic)
    )
