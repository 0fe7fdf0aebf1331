from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.db import transaction
from django.test import RequestFactory

from clinic.demo import DEMO_PASSWORD
from clinic.models import Clinic, Location, Membership, Practitioner, Room, Service, User
from patients.models import Patient
from sessions.models import Appointment
from treatments.models import Modality

pytestmark = pytest.mark.django_db

MODELS = [Clinic, Location, Room, Service, Practitioner, Membership, User, Patient, Appointment, Modality]


def _counts():
    return {model.__name__: model.objects.count() for model in MODELS}


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """One demo seed for the module (seed_demo costs several seconds): the tests' own
    transactions nest in this one, which is rolled back after the last of them."""
    with django_db_blocker.unblock(), transaction.atomic():
        out = StringIO()
        call_command("seed_demo", stdout=out)
        yield out.getvalue()
        transaction.set_rollback(True)


def test_demo_seed_builds_the_demo_clinic(seeded):
    clinic = Clinic.objects.get(slug="demo")
    assert Practitioner.objects.filter(clinic=clinic).count() == 3
    assert Room.objects.filter(clinic=clinic).count() == 2
    assert set(Service.objects.filter(clinic=clinic).values_list("modality__code", flat=True)) == {
        "art",
        "massage",
        "acupuncture",
    }
    assert Patient.objects.filter(clinic=clinic).count() == 20
    assert Appointment.objects.filter(clinic=clinic).count() > 0
    assert "owner" in seeded
    assert DEMO_PASSWORD in seeded


def test_demo_seed_twice_duplicates_nothing(seeded):
    first = _counts()
    call_command("seed_demo", stdout=StringIO())
    assert _counts() == first


def test_printed_demo_logins_work(seeded):
    for username in ("owner", "frontdesk", "ava"):
        request = RequestFactory().post("/admin/login/")
        assert authenticate(request, username=username, password=DEMO_PASSWORD) is not None


def test_demo_appointments_never_overlap_for_a_practitioner_or_room(seeded):
    appointments = list(Appointment.objects.select_related("service"))
    for key in ("practitioner_id", "room_id"):
        by_owner: dict = {}
        for a in appointments:
            if getattr(a, key) is not None:
                by_owner.setdefault(getattr(a, key), []).append(a)
        for rows in by_owner.values():
            rows.sort(key=lambda a: a.start)
            for earlier, later in zip(rows, rows[1:], strict=False):
                assert later.start >= earlier.end
