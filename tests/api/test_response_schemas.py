"""Every GET route and custom POST action, called on an object that exists, answers as its OpenAPI schema says.

Schemathesis (tests/api/test_schemathesis.py) generates ids and only now and then hits a seeded
row, so a wrong response schema on an object route could pass for months and then fail one CI
run (`GET /appointments/{id}/history/` documented one Appointment and returned a list). Here
each GET route of the walked API is called as an owner of the clinic that holds the object, and
the 200 answer is checked against the schema with Schemathesis' own validator: status, content
type, headers and body.
"""

from __future__ import annotations

import re

import pytest
import requests
import schemathesis
from schemathesis.core.transport import Response as SchemathesisResponse

from clinic.wsgi import application
from tests.api.endpoints import Endpoint, api_endpoints, make
from tests.factories import LocationFactory, ServiceFactory, WorkingHoursFactory

ENDPOINTS = [e for e in api_endpoints() if "get" in e.methods]


def _shape(route: str) -> str:
    """`/api/v1/appointments/{id}/history/` and `api/v1/appointments/{pk}/history/` alike."""
    return "/" + re.sub(r"\{[^}]+\}|<[^>]+>", "{}", route).lstrip("/")


@pytest.fixture(scope="module")
def openapi(django_db_blocker):
    # The WSGI handler checks the open database connection around each request (Django's
    # close_old_connections); once an earlier test in this process has used the database,
    # that counts as database access.
    with django_db_blocker.unblock():
        return schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


def _operation(openapi, endpoint: Endpoint):
    paths = {_shape(path): path for path in openapi.raw_schema["paths"]}
    path = paths.get(_shape(endpoint.route))
    assert path is not None, f"GET {endpoint} is served but not in the OpenAPI schema"
    return openapi[path]["GET"]


def _procedure_id(session, api) -> str:
    from sessions.fhir.clinical import procedures_of

    return procedures_of(session)[0]["id"]


def _observation_id(session, api) -> str:
    from sessions.fhir.clinical import observations_of

    return observations_of(session)[0]["id"]


def _free_slot_id(practitioner, api) -> str:
    clinic = practitioner.clinic
    service = ServiceFactory(clinic=clinic, requires_room=False)
    practitioner.services.add(service)
    location = LocationFactory(clinic=clinic)
    for weekday in range(7):
        WorkingHoursFactory(clinic=clinic, practitioner=practitioner, location=location, weekday=weekday)
    bundle = api.get("/fhir/R4/Slot", {"service": service.pk, "schedule": f"Schedule/{practitioner.pk}"}).json()
    assert bundle.get("entry"), f"no free slot to read: {bundle}"
    return bundle["entry"][0]["resource"]["id"]


# Object routes whose id is not the object's pk: URL name -> the id of a resource the object holds.
DERIVED_IDS = {
    "fhir:procedure-detail": _procedure_id,
    "fhir:observation-detail": _observation_id,
    "fhir:slot-detail": _free_slot_id,
}


def _as_schemathesis_response(response, url: str, method: str = "GET") -> SchemathesisResponse:
    headers: dict[str, list[str]] = {}
    for name, value in response.headers.items():
        headers.setdefault(name.lower(), []).append(value)
    return SchemathesisResponse(
        status_code=response.status_code,
        headers=headers,
        content=response.content,
        request=requests.Request(method, f"http://testserver{url}").prepare(),
        elapsed=0.0,
        verify=False,
    )


def test_the_shapes_match_spectacular_and_django_spellings():
    assert _shape("/api/v1/appointments/{id}/history/") == _shape("api/v1/appointments/{pk}/history/")
    assert _shape("/api/v1/pain-series/{patient_id}/") == _shape("api/v1/pain-series/<int:patient_id>/")


def test_every_derived_id_route_is_served():
    assert set(DERIVED_IDS) <= {e.name for e in ENDPOINTS}


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_a_get_on_an_existing_object_matches_its_schema(endpoint: Endpoint, openapi, clinic, owner_api):
    operation = _operation(openapi, endpoint)
    obj = make(endpoint.model, clinic)
    url = endpoint.url(obj)
    if endpoint.name in DERIVED_IDS:
        url = url.replace(f"/{obj.pk}", f"/{DERIVED_IDS[endpoint.name](obj, owner_api)}")
    response = owner_api.get(url)
    assert response.status_code == 200, f"GET {url}: {response.status_code} {response.content[:300]!r}"
    # Raises Schemathesis' failure group (which names the schema and the offending value) on a mismatch.
    operation.validate_response(_as_schemathesis_response(response, url))


def _post_actions():
    """(endpoint) for every custom POST action on an object: cancel, confirm, revoke, sign..."""
    for endpoint in api_endpoints():
        if endpoint.is_detail and endpoint.actions.get("post") not in (None, "create"):
            yield pytest.param(endpoint, id=str(endpoint))


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", list(_post_actions()))
def test_a_post_action_on_an_existing_object_answers_as_documented(endpoint: Endpoint, openapi, clinic, owner_api):
    # An empty body: whatever the answer (done, 400 for a missing field, 409 for a state that
    # does not allow it), it must be one the schema documents, with the documented body.
    path = {_shape(p): p for p in openapi.raw_schema["paths"]}.get(_shape(endpoint.route))
    assert path is not None, f"POST {endpoint} is served but not in the OpenAPI schema"
    operation = openapi[path]["POST"]
    url = endpoint.url(make(endpoint.model, clinic))
    response = owner_api.post(url, {}, format="json")
    assert response.status_code < 500, f"POST {url}: {response.status_code}"
    operation.validate_response(_as_schemathesis_response(response, url, "POST"))
