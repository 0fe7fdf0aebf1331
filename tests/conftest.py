"""Shared personas: a clinic with an owner, a therapist and a receptionist, and
another clinic with its own therapist (who must never see the first clinic's data)."""

from __future__ import annotations

import copy
import subprocess
import uuid

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from clinic.security.roles import Role
from tests.factories import ClinicFactory, PractitionerFactory, staff


@pytest.fixture(scope="session")
def django_db_setup(
    request,
    django_test_environment,
    django_db_blocker,
    django_db_use_migrations,
    django_db_keepdb,
    django_db_createdb,
    django_db_modify_db_settings,
):
    """pytest-django's test database setup, except that PostgreSQL databases are cloned from a
    template migrated once (tests/databases.py) instead of migrated in every xdist worker.
    `--create-db` still builds from migrations, once per run; `--no-migrations` takes
    pytest-django's own path."""
    from django.db import connections
    from django.test.utils import setup_databases, teardown_databases
    from pytest_django.fixtures import _disable_migrations, _get_databases_for_setup

    from tests.databases import setup_from_template

    if not django_db_use_migrations:
        _disable_migrations()
    aliases, serialized_aliases = _get_databases_for_setup(request.session.items)
    verbosity = request.config.option.verbose
    keepdb = django_db_keepdb and not django_db_createdb
    # One id for the whole run, shared by its xdist workers: --create-db rebuilds the template once.
    run_id = getattr(request.config, "workerinput", {}).get("testrunuid") or uuid.uuid4().hex
    cloned = {
        alias
        for alias in aliases
        if django_db_use_migrations and connections[alias].vendor == "postgresql" and alias not in serialized_aliases
    }
    with django_db_blocker.unblock():
        old_config = [
            setup_from_template(alias, run_id=run_id, rebuild=django_db_createdb, keepdb=keepdb, verbosity=verbosity)
            for alias in sorted(cloned)
        ]
        if aliases - cloned:
            old_config += setup_databases(
                verbosity=verbosity,
                interactive=False,
                aliases=aliases - cloned,
                serialized_aliases=serialized_aliases,
                keepdb=keepdb,
            )

    yield

    if not django_db_keepdb:
        with django_db_blocker.unblock():
            teardown_databases(old_config, verbosity=verbosity)


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


@pytest.fixture(autouse=True)
def _processes_are_marked(request, monkeypatch):
    """A test that starts a process says so with the `processes` (or `browser`) marker:
    `make test-fast` deselects those, and an unmarked one would slow the edit-test loop."""
    if request.node.get_closest_marker("processes") or request.node.get_closest_marker("browser"):
        return

    def refuse(self, args, *rest, **kwargs):
        raise AssertionError(f"this test starts a process ({args!r}): mark it @pytest.mark.processes")

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)


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
