"""Shared personas: a clinic with an owner, a therapist and a receptionist, and
another clinic with its own therapist (who must never see the first clinic's data)."""

from __future__ import annotations

import copy
import uuid

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from clinic.security.roles import Role
from tests.factories import ClinicFactory, PractitionerFactory, staff


@pytest.fixture(scope="session", autouse=True)
def _test_run_settings():
    """Rate-limit counters live in the cache (Redis): each run and xdist worker gets its own key
    prefix, so a user id reused by another worker's database never shares a counter. Passwords
    use a fast hasher: the production one costs about a second per staff persona on a busy CI box."""
    from django.conf import settings

    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"test-{uuid.uuid4().hex[:12]}"
    with override_settings(CACHES=caches, PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture
def clinic():
    return ClinicFactory(name="Riverside", slug="riverside")


@pytest.fixture
def other_clinic():
    return ClinicFactory(name="Elsewhere", slug="elsewhere")


@pytest.fixture
def owner(clinic):
    return staff(clinic, Role.OWNER, "olivia-owner")


@pytest.fixture
def therapist(clinic):
    return staff(clinic, Role.THERAPIST, "theo-therapist")


@pytest.fixture
def practitioner(clinic, therapist):
    return PractitionerFactory(clinic=clinic, user=therapist, display_name="Theo Therapist")


@pytest.fixture
def receptionist(clinic):
    return staff(clinic, Role.RECEPTIONIST, "rita-reception")


@pytest.fixture
def other_therapist(other_clinic):
    return staff(other_clinic, Role.THERAPIST, "otto-other")


def _client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


@pytest.fixture
def api():
    """Unauthenticated API client."""
    return APIClient()


@pytest.fixture
def owner_api(owner):
    return _client_for(owner)


@pytest.fixture
def therapist_api(therapist):
    return _client_for(therapist)


@pytest.fixture
def receptionist_api(receptionist):
    return _client_for(receptionist)


@pytest.fixture
def other_api(other_therapist):
    return _client_for(other_therapist)


@pytest.fixture
def catalogs(db):
    """The shared treatment catalogs from treatments/catalog_data/ (idempotent loader)."""
    from treatments.catalogs import load_catalogs

    load_catalogs()
