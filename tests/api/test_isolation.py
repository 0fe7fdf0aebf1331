"""Generated over every endpoint under /api/v1/ and /fhir/R4/ (walked from the URL resolver).

- Isolation matrix: clinic A's objects, called by an owner of clinic B and by a key of clinic B
  with every scope: lists show none of them, every object route (retrieve, update, delete,
  custom actions) is 404, and no id of clinic A appears anywhere in any response body.
- Receptionists are denied every endpoint limited to clinical roles.
- Query budgets: a list costs the same number of queries at page_size=1 and page_size=100.
- Bad input: unknown query parameters, malformed JSON, unknown fields, oversized bodies are
  4xx in the error format, and nothing is written.

A new endpoint is covered without editing this file; its model needs an entry in
tests/factories.py API_OBJECT_FACTORIES (the first test fails until it has one).
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_filters import ModelChoiceFilter, ModelMultipleChoiceFilter, NumberFilter
from rest_framework.test import APIClient

from clinic.api.authentication import ALL_SCOPES
from clinic.fhir.base import FhirReferenceFilter
from clinic.models import User
from clinic.security.roles import CLINICAL_ROLES, Role
from clinic.services import api_key_create
from sessions.models import Appointment, AppointmentSeries
from tests.api.endpoints import (
    Endpoint,
    api_endpoints,
    filterset_of,
    foreign_ids_in,
    ids_created_since,
    make,
    make_ids_unmistakable,
    openapi_schema,
    request_properties,
)
from tests.api.errors import error_fields, is_error
from tests.factories import API_OBJECT_FACTORIES, staff

ENDPOINTS = api_endpoints()
# Paginated lists; a computed answer such as FHIR Slot (free-slot search) has no pages to compare.
LISTS = [e for e in ENDPOINTS if e.is_list and getattr(e.view_class, "pagination_class", None)]


def _user_client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


def _key_client(clinic) -> APIClient:
    _, raw = api_key_create(clinic=clinic, name="everything", scopes=list(ALL_SCOPES))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _call(client: APIClient, method: str, url: str, body: str = "{}", **extra):
    if method == "get":
        return client.get(url, **extra)
    return client.generic(method.upper(), url, body, content_type="application/json", **extra)


def _is_error(response) -> bool:
    return is_error(response)  # the REST error body, or an OperationOutcome under /fhir/R4/


def test_the_walk_finds_the_api():
    routes = {str(e) for e in ENDPOINTS}
    assert "/api/v1/rooms/" in routes
    assert "/api/v1/api-keys/{pk}/revoke/" in routes
    assert len(LISTS) >= 6


def test_every_api_endpoint_has_a_factory_for_its_model():
    missing = sorted(
        {f"{e.model._meta.label} (served at {e})" for e in ENDPOINTS if e.model not in API_OBJECT_FACTORIES}
    )
    assert not missing, (
        "These endpoints serve models with no entry in tests/factories.py API_OBJECT_FACTORIES, so the "
        "isolation matrix cannot create their objects: " + "; ".join(missing)
    )


@pytest.mark.django_db
@pytest.mark.parametrize("caller", ["owner-session", "all-scopes-key"])
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_clinic_b_cannot_see_or_touch_clinic_a(endpoint: Endpoint, caller, clinic, other_clinic):
    client = _user_client(staff(other_clinic, Role.OWNER)) if caller == "owner-session" else _key_client(other_clinic)
    refused_outright = caller == "all-scopes-key" and not getattr(endpoint.view_class, "api_keys_allowed", True)
    starts = make_ids_unmistakable()
    obj = make(endpoint.model, clinic)
    foreign = ids_created_since(starts)
    assert obj.pk in foreign

    for method in endpoint.methods:
        url = endpoint.url(obj)
        response = _call(client, method, url)
        where = f"{method.upper()} {url} as clinic B's {caller}"
        assert response.status_code < 500, f"{where}: {response.status_code}"
        leaked = foreign_ids_in(response.content.decode(), foreign)
        assert not leaked, f"{where} returned ids of clinic A {leaked}: {response.content[:500]!r}"
        if refused_outright:
            assert response.status_code == 403, where
        elif endpoint.is_detail:
            assert response.status_code == 404, f"{where}: {response.status_code}, expected 404"
        elif endpoint.query is not None:
            # The query names clinic A's object (GET /slots/?service=<A's>): that parameter is "Not found.",
            # a 400 like any other id of another clinic in a request.
            named = set(endpoint.query(obj)) & set(error_fields(response))
            assert response.status_code == 400, f"{where}: {response.status_code} {response.content[:300]!r}"
            assert named, f"{where}: {response.content[:300]!r}"
        elif method == "get":
            assert response.status_code == 200, where
        if response.status_code >= 400:
            assert _is_error(response), where


@pytest.mark.django_db
def test_receptionists_are_denied_every_clinical_endpoint(clinic, receptionist):
    clinical = [e for e in ENDPOINTS if getattr(e.view_class, "allowed_roles", None) == CLINICAL_ROLES]
    # Clinical content by design: a view that loses `allowed_roles = CLINICAL_ROLES` fails here.
    assert {
        "/api/v1/notes/",
        "/api/v1/notes/{pk}/",
        "/api/v1/intake-submissions/",
        "/api/v1/intake-submissions/{pk}/",
        "/api/v1/pain-series/<int:patient_id>/",
    } <= {str(e) for e in clinical}
    assert_receptionist_denied(clinical, clinic, receptionist)


@pytest.mark.django_db
@pytest.mark.urls("tests.api.urls")
def test_the_receptionist_check_denies_clinical_endpoints_and_catches_open_ones(clinic, receptionist):
    # tests/api/urls.py adds a clinical-only viewset; the project's own are checked above.
    walked = api_endpoints()
    clinical = [
        e
        for e in walked
        if getattr(e.view_class, "allowed_roles", None) == CLINICAL_ROLES and e.route.startswith("api/v1/test-only/")
    ]
    assert {e.route for e in clinical} == {
        "api/v1/test-only/clinical-locations/",
        "api/v1/test-only/clinical-locations/{pk}/",
    }
    assert_receptionist_denied(clinical, clinic, receptionist)
    open_to_all = [e for e in walked if e.route == "api/v1/locations/"]
    with pytest.raises(AssertionError, match="as a receptionist"):
        assert_receptionist_denied(open_to_all, clinic, receptionist)


def assert_receptionist_denied(endpoints, clinic, receptionist) -> None:
    client = _user_client(receptionist)
    for endpoint in endpoints:
        obj = make(endpoint.model, clinic)
        for method in endpoint.methods:
            response = _call(client, method, endpoint.url(obj))
            where = f"{method.upper()} {endpoint.url(obj)} as a receptionist of the same clinic"
            assert response.status_code in (403, 404), f"{where}: {response.status_code}"
            assert _is_error(response), where


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", LISTS, ids=str)
def test_list_query_count_does_not_grow_with_page_size(endpoint: Endpoint, clinic, owner):
    client = _user_client(owner)
    for _ in range(3):
        make(endpoint.model, clinic)
    size_param = endpoint.view_class.pagination_class.page_size_query_param  # page_size, or FHIR's _count
    counts = []
    for size in (1, 100):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(endpoint.url(), {size_param: size})
        assert response.status_code == 200, response.content[:300]
        counts.append(len(queries))
    body = client.get(endpoint.url(), {size_param: 100}).json()
    rows = body["entry"] if body.get("resourceType") == "Bundle" else body["results"]
    assert len(rows) >= 3
    assert counts[0] == counts[1], f"{endpoint}: {counts[0]} queries at page_size=1, {counts[1]} at 100"


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", LISTS, ids=str)
def test_unknown_query_parameters_are_400(endpoint: Endpoint, owner):
    response = _user_client(owner).get(endpoint.url(), {"udpated_since": "2026-01-01T00:00:00Z"})
    assert response.status_code == 400
    assert _is_error(response)
    assert "udpated_since" in error_fields(response)


def _write_routes():
    """(endpoint, method) for every create and update: the routes that read a body."""
    for endpoint in ENDPOINTS:
        for method, action in endpoint.actions.items():
            if action in ("create", "update", "partial_update"):
                yield pytest.param(endpoint, method, id=f"{method.upper()} {endpoint}")


WRITES = list(_write_routes())


def _count(model) -> int:
    return model._base_manager.count()


@pytest.mark.django_db
@pytest.mark.parametrize(("endpoint", "method"), WRITES)
def test_bad_bodies_are_4xx_in_the_error_format_and_write_nothing(endpoint: Endpoint, method, clinic, owner):
    client = _user_client(owner)
    obj = make(endpoint.model, clinic)
    url = endpoint.url(obj)
    before = _count(endpoint.model)
    cases = {
        "malformed JSON": ('{"name": ', 400),
        "JSON that is not an object": ("[1, 2]", 400),
        "unknown field": (json.dumps({"surely_not_a_field": 1}), 400),
        "oversized body": (json.dumps({"name": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)}), 413),
    }
    for case, (body, status) in cases.items():
        response = _call(client, method, url, body)
        assert response.status_code == status, f"{case}: {response.status_code} {response.content[:300]!r}"
        assert _is_error(response), case
    unknown = _call(client, method, url, json.dumps({"surely_not_a_field": 1}))
    assert "surely_not_a_field" in error_fields(unknown)
    response = client.generic(method.upper(), url, "name=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert _count(endpoint.model) == before


# --- hostile input on every route -------------------------------------------------------------

DEEP = "[" * 1000 + "]" * 1000
# Raw JSON text: json.dumps cannot write these, and each crashed something after the parser.
UNPARSEABLE_NUMBERS = {
    "1e400": '{"id": 1e400}',
    "-1e400": '{"id": -1e400}',
    "NaN": '{"id": NaN}',
    "-Infinity": '{"id": -Infinity}',
}
# Valid JSON, invalid in every integer field (an id no row has, a count or score out of range).
BAD_INTEGERS = {"10**30": 10**30, "-1": -1}
# Shaped like a date, outside the supported years or the calendar: (date-time, date).
BAD_DATES = {
    "year 1": ("0001-01-01T00:00:00Z", "0001-01-01"),
    "year 9999": ("9999-12-31T23:00:00-05:00", "9999-12-31"),
    "30 February": ("2027-02-30T10:00:00Z", "2027-02-30"),
    "hour 25": ("2027-03-02T25:00:00Z", "2027-03-02T25"),
}


def _body_routes():
    """(endpoint, method) for every route that can carry a body: creates, updates and actions."""
    for endpoint in ENDPOINTS:
        for method in endpoint.methods:
            if method in ("post", "put", "patch"):
                yield pytest.param(endpoint, method, id=f"{method.upper()} {endpoint}")


@pytest.fixture(scope="module")
def openapi():
    return openapi_schema()


def _hostile_bodies(properties: dict | None) -> list[tuple[str, str, list[str]]]:
    """(case, raw body, the fields its answer must name as invalid): one request per case."""
    cases = [("1,000 levels deep", DEEP, []), *((case, body, []) for case, body in UNPARSEABLE_NUMBERS.items())]
    properties = properties or {}
    integers = [name for name, prop in properties.items() if prop.get("type") in ("integer", "number")]
    dates = {name: prop["format"] for name, prop in properties.items() if prop.get("format") in ("date", "date-time")}
    if integers:
        cases += [
            (f"{case} in {integers}", json.dumps(dict.fromkeys(integers, n)), integers)
            for case, n in BAD_INTEGERS.items()
        ]
    if dates:
        for case, (date_time, date) in BAD_DATES.items():
            body = {name: date_time if kind == "date-time" else date for name, kind in dates.items()}
            cases.append((f"{case} in {list(dates)}", json.dumps(body), list(dates)))
    return cases


@pytest.mark.django_db
@pytest.mark.parametrize(("endpoint", "method"), list(_body_routes()))
def test_hostile_bodies_are_4xx_on_every_route(endpoint: Endpoint, method, openapi, clinic, owner):
    """Deep nesting, numbers JSON cannot hold, huge and negative integers in every integer field,
    and impossible dates in every date field: never a 5xx. A route that documents a body answers
    each with a 4xx in the error format naming the fields, and writes nothing."""
    client = _user_client(owner)
    url = endpoint.url(make(endpoint.model, clinic))
    properties = request_properties(openapi, endpoint, method)
    before = {model: _count(model) for model in API_OBJECT_FACTORIES}
    for case, body, named in _hostile_bodies(properties):
        response = _call(client, method, url, body)
        where = f"{method.upper()} {url} with {case}"
        assert response.status_code < 500, f"{where}: {response.status_code}"
        if properties is None:
            continue  # an action that documents no body ignores one; it only must not crash on it
        assert 400 <= response.status_code < 500, f"{where}: {response.status_code} {response.content[:300]!r}"
        assert _is_error(response), where
        if response.status_code == 400:
            accepted = [name for name in named if name not in error_fields(response)]
            assert not accepted, f"{where}: {accepted} accepted: {response.content[:400]!r}"
    if properties is not None:
        assert {model: _count(model) for model in before} == before


# --- id filters: another clinic's id answers like an id that does not exist -----------------


def _series_in(clinic):
    appointment = make(Appointment, clinic)
    return AppointmentSeries.objects.create(
        clinic=clinic, patient=appointment.patient, practitioner=appointment.practitioner,
        service=appointment.service, first_start=appointment.start, interval_days=7, occurrences=2,
    )  # fmt: skip


# Rows an id filter can name that no endpoint serves (so API_OBJECT_FACTORIES has no entry).
FILTER_ROW_FACTORIES = {
    User: lambda clinic: staff(clinic, Role.THERAPIST),
    AppointmentSeries: _series_in,
}


def _id_filter_target(model, declared):
    """The model whose ids the filter takes: a ModelChoiceFilter's, or a number filter on a
    foreign key or the primary key; None for other filters."""
    if isinstance(declared, (ModelChoiceFilter, ModelMultipleChoiceFilter)):
        return declared.queryset.model
    if isinstance(declared, FhirReferenceFilter):  # FHIR `patient=Patient/12`: the first type it takes
        declared = NumberFilter(field_name=next(iter(declared.types.values())))
    if not isinstance(declared, NumberFilter):
        return None
    if declared.field_name == "pk":
        return model
    try:
        field = model._meta.get_field(declared.field_name.removesuffix("_id"))
    except FieldDoesNotExist:
        return None
    return field.related_model if field.is_relation else None


def _id_filters():
    for endpoint in ENDPOINTS:
        filterset = filterset_of(endpoint) if endpoint.is_list else None
        for name, declared in (filterset.base_filters if filterset else {}).items():
            target = _id_filter_target(endpoint.model, declared)
            if target is not None:
                yield pytest.param(endpoint, name, target, id=f"{endpoint}?{name}")


ID_FILTERS = list(_id_filters())


def test_the_walk_finds_the_id_filters():
    found = {(str(p.values[0]), p.values[1]) for p in ID_FILTERS}
    assert {
        ("/api/v1/appointments/", "series"),
        ("/api/v1/break-glass/", "user"),
        ("/fhir/R4/Encounter", "subject"),
    } <= found
    assert len(ID_FILTERS) >= 30


@pytest.mark.django_db
@pytest.mark.parametrize(("endpoint", "name", "target"), ID_FILTERS)
def test_an_id_of_another_clinic_in_a_filter_answers_like_a_missing_id(
    endpoint: Endpoint, name, target, clinic, other_clinic, owner
):
    client = _user_client(owner)
    make(endpoint.model, clinic)
    maker = FILTER_ROW_FACTORIES.get(target) or API_OBJECT_FACTORIES[target]
    foreign = maker(other_clinic).pk
    missing = target._base_manager.order_by("-pk").values_list("pk", flat=True)[0] + 1_000_000
    answers = []
    for value in (foreign, missing):
        response = client.get(endpoint.url(), {name: value})
        # The id itself may come back (a FHIR Bundle's self link); everything else is the same.
        answers.append((response.status_code, response.content.decode().replace(str(value), "<id>")))
    assert answers[0] == answers[1], f"{endpoint}?{name}: another clinic's id {answers[0]}, a missing id {answers[1]}"
    status, body = answers[0]
    assert status in (200, 400), body
    if status == 400:
        assert client.get(endpoint.url(), {name: foreign}).status_code == 400
        assert error_fields(client.get(endpoint.url(), {name: foreign})) == {name: ["Not found."]}
