"""Notes fixtures: a draft session of the shared therapist, and builders for unsaved entries."""

from __future__ import annotations

import pytest

from sessions.models import AcupunctureEntry, ArtEntry, HomeCareEntry, MassageEntry
from tests.factories import PatientFactory, TreatmentSessionFactory
from treatments.models import AcupuncturePoint, BodyRegion, Muscle


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Personas get real passwords; PBKDF2's deliberate slowness costs seconds per test here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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
