"""Property-based run of the whole API against its own OpenAPI schema (Schemathesis).

Every operation of /api/schema/ is called through the WSGI app with generated valid and invalid
input, as an all-scopes API key of a seeded clinic, and each response is checked: never a 5xx,
status code, content type, headers and body as documented. Fixed seed, deterministic
generation and a bounded number of examples per operation keep the run repeatable and short.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi import checks as openapi_checks

from clinic.api.authentication import ALL_SCOPES
from clinic.services import api_key_create
from clinic.wsgi import application
from tests.factories import API_OBJECT_FACTORIES, ClinicFactory

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20261121,
        "generation": {"max-examples": 12, "deterministic": True, "database": "none"},
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
        "suppress-health-check": ["all"],
    }
)
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, config=CONFIG)

# Checks left out, each with its reason. Every other check runs (not_a_server_error, status code,
# content type, headers and response schema conformance, negative data rejection, ignored auth).
EXCLUDED_CHECKS = [
    # "A schema-valid request must be 2xx": generated ids are rarely the seeded rows (404), and the
    # owner-only endpoints refuse API keys by design (403); both answers are documented.
    openapi_checks.positive_data_acceptance,
]


def test_this_module_runs_without_xdist():
    # Under pytest-xdist, Schemathesis 4.32 reports the whole schema as one item and runs only part
    # of it (a deliberately failing assertion on the FHIR Appointment operations passed under -n 2
    # and failed under -n0). `make test` runs this module in its own `pytest -n0`.
    assert "PYTEST_XDIST_WORKER" not in os.environ, "Run tests/api/test_schemathesis.py with -n0 (make test does)."


@pytest.fixture
def seeded_api_key(db):
    clinic = ClinicFactory(slug="schemathesis", api_rate_limit_per_minute=1_000_000)
    for make in API_OBJECT_FACTORIES.values():
        make(clinic)
    _, raw = api_key_create(clinic=clinic, name="schemathesis", scopes=list(ALL_SCOPES))
    return raw


@pytest.fixture
def app_inside_the_test_transaction():
    # The real WSGI handler closes "old" connections around each request; inside the test's
    # transaction that would drop it. Django's own test client disconnects the same receiver.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
def test_every_operation_conforms_to_the_schema(case, seeded_api_key, app_inside_the_test_transaction):
    response = case.call_and_validate(
        headers={"Authorization": f"Bearer {seeded_api_key}"}, excluded_checks=EXCLUDED_CHECKS
    )
    # The key is valid and the rate limit out of reach: a 401 or 429 would mean the run only
    # exercised the authentication layer.
    assert response.status_code not in (401, 429), response.text[:300]
