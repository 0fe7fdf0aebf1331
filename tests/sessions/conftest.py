"""Booking fixtures: the Riverside clinic (America/Toronto) on Monday 1 March 2027 at 08:00,
with a location, a room-needing massage service (60 min + 15 min buffer), two rooms, and
Theo Therapist working 09:00-17:00 every weekday. Notes fixtures: a draft session of the
shared therapist, and builders for unsaved entries."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from types import SimpleNamespace

import pytest

from sessions.models import AcupunctureEntry, ArtEntry, HomeCareEntry, MassageEntry
from tests.factories import (
    LocationFactory,
    PatientFactory,
    PractitionerFactory,
    RoomFactory,
    ServiceFactory,
    TreatmentSessionFactory,
    WorkingHoursFactory,
)
from treatments.models import AcupuncturePoint, BodyRegion, Muscle

TORONTO = zoneinfo.ZoneInfo("America/Toronto")
NOW = dt.datetime(2027, 3, 1, 8, 0, tzinfo=TORONTO)  # a Monday


def local(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TORONTO)


@pytest.fixture
def frozen(time_machine):
    """Clock at NOW, ticking (lock waits and timestamps still advance)."""
    time_machine.move_to(NOW, tick=True)
    return NOW


def weekday_hours(clinic, practitioner, location, start=dt.time(9), end=dt.time(17), days=range(7)):
    for weekday in days:
        WorkingHoursFactory(
            clinic=clinic, practitioner=practitioner, location=location, weekday=weekday, start_time=start, end_time=end
        )


@pytest.fixture
def setup(frozen, clinic, practitioner):
    location = LocationFactory(clinic=clinic, name="Main street")
    massage = ServiceFactory(clinic=clinic, name="Remedial massage", duration_minutes=60, buffer_minutes=15)
    acupuncture = ServiceFactory(
        clinic=clinic, name="Acupuncture", duration_minutes=45, buffer_minutes=15, requires_room=False
    )
    room1 = RoomFactory(clinic=clinic, location=location, name="Room 1")
    room2 = RoomFactory(clinic=clinic, location=location, name="Room 2")
    room1.services.add(massage)
    room2.services.add(massage)
    practitioner.services.add(massage, acupuncture)
    weekday_hours(clinic, practitioner, location)
    other = PractitionerFactory(clinic=clinic, display_name="Una Other")
    other.services.add(massage)
    weekday_hours(clinic, other, location)
    return SimpleNamespace(
        clinic=clinic,
        location=location,
        massage=massage,
        acupuncture=acupuncture,
        room1=room1,
        room2=room2,
        practitioner=practitioner,
        other=other,
        patient=PatientFactory(clinic=clinic),
        patient2=PatientFactory(clinic=clinic),
    )


@pytest.fixture
def patient(clinic):
    return PatientFactory(clinic=clinic, given_name="Maya", family_name="Singh")


@pytest.fixture
def session(catalogs, clinic, practitioner, patient):
    return TreatmentSessionFactory(clinic=clinic, practitioner=practitioner, patient=patient)


def art(session, structure="gastrocnemius", side="left", passes=3, **extra) -> ArtEntry:
    return ArtEntry(
        session=session, structure=Muscle.objects.get(code=structure, clinic=None), side=side, passes=passes, **extra
    )


def massage(session, region="calf", side="left", pressure=3, minutes=15, **extra) -> MassageEntry:
    return MassageEntry(
        session=session,
        region=BodyRegion.objects.get(code=region, clinic=None),
        side=side,
        technique="trigger_point",
        pressure=pressure,
        minutes=minutes,
        **extra,
    )


def needle(session, point="ST36", side="left", inserted=1, removed=None, **extra) -> AcupunctureEntry:
    return AcupunctureEntry(
        session=session,
        point=AcupuncturePoint.objects.get(code=point, clinic=None),
        side=side,
        needles_inserted=inserted,
        needles_removed=inserted if removed is None else removed,
        depth_mm=20,
        retention_minutes=20,
        **extra,
    )


def home_care(session, **extra) -> HomeCareEntry:
    values = {"exercise": "Wall calf stretch", "sets": 3, "reps": 10, "frequency": "twice daily"} | extra
    return HomeCareEntry(session=session, **values)
