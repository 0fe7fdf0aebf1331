"""Generated over every list under /api/v1/ and /fhir/R4/: date-time filters take any ISO 8601
offset; impossible and out-of-range dates in any date parameter are a 400; numbers no row can
have in any number or id filter are never a 5xx.

PostgreSQL refuses offsets beyond +-15:59 that ISO 8601 allows (`-22:42`), so a filter that
passed the value through answered 500; `UtcIsoDateTimeFilter` converts it to UTC first. Dates
outside 1900-2199 overflowed in slot arithmetic (`clinic.api.conventions.EARLIEST_YEAR`, `LATEST_YEAR`).
"""

from __future__ import annotations

import pytest
from django_filters import (
    DateFilter,
    DateTimeFilter,
    IsoDateTimeFilter,
    ModelChoiceFilter,
    ModelMultipleChoiceFilter,
    NumberFilter,
)
from rest_framework.test import APIClient

from clinic.api.inputs import UtcIsoDateTimeFilter
from clinic.fhir.base import FhirDateFilter, FhirReferenceFilter
from tests.api.endpoints import api_endpoints, filterset_of, make
from tests.api.errors import error_fields, is_error


def _date_time_filters():
    for endpoint in api_endpoints():
        filterset = getattr(endpoint.view_class, "filterset_class", None)
        if not endpoint.is_list or filterset is None:
            continue
        for name, declared in filterset.base_filters.items():
            if isinstance(declared, IsoDateTimeFilter):
                yield pytest.param(endpoint, name, declared, id=f"{endpoint}?{name}")


DATE_TIME_FILTERS = list(_date_time_filters())


def test_the_lists_have_date_time_filters():
    assert {"updated_since", "start_from"} <= {p.values[1] for p in DATE_TIME_FILTERS}


@pytest.mark.django_db
@pytest.mark.parametrize(("endpoint", "name", "declared"), DATE_TIME_FILTERS)
def test_date_time_filters_accept_any_iso_offset(endpoint, name, declared, owner):
    assert isinstance(declared, UtcIsoDateTimeFilter), f"{endpoint}?{name}: use clinic.api.inputs.UtcIsoDateTimeFilter"
    client = APIClient()
    client.force_authenticate(user=owner)
    assert client.get(endpoint.url(), {name: "2026-01-01T00:00:00-22:42"}).status_code == 200
    response = client.get(endpoint.url(), {name: "9999-12-31T23:59:59-05:00"})
    assert response.status_code == 400
    assert list(error_fields(response)) == [name]


# --- impossible and out-of-range dates, and numbers no id can be, in every query filter -------

# Searches computed by the view rather than a FilterSet, and their date parameters.
COMPUTED_SEARCH_DATES = {"v1:slots": ("start", "end"), "fhir:slot-list": ("start",)}
DATE_FILTER_TYPES = (IsoDateTimeFilter, DateFilter, DateTimeFilter, FhirDateFilter)
# (earlier, later): a route with two date parameters (start and end) gets both, in that order.
BAD_DATES = {
    "year 1": ("0001-01-01T00:00:00Z", "0001-01-03T00:00:00Z"),
    "year 9999": ("9999-12-29T00:00:00Z", "9999-12-31T00:00:00Z"),
    "30 February": ("2027-02-30T10:00:00Z", "2027-03-02T10:00:00Z"),
    "hour 25": ("2027-03-02T25:00:00Z", "2027-03-03T10:00:00Z"),
    "offset +24:00": ("2027-03-02T10:00:00+24:00", "2027-03-03T10:00:00Z"),
}
# The same cases for a date-only filter: a time or an offset in its value is malformed.
BAD_DAYS = {
    "year 1": "0001-01-01",
    "year 9999": "9999-12-31",
    "30 February": "2027-02-30",
    "hour 25": "2027-03-02T25",
    "offset +24:00": "2027-03-02+24:00",
}
BAD_NUMBERS = {"1e400": "1e400", "NaN": "NaN", "10**30": str(10**30), "-1": "-1"}


def _date_params(endpoint) -> dict[str, str]:
    """{query parameter: "date-time" | "date" | "fhir"} for every date the GET route reads."""
    if endpoint.name in COMPUTED_SEARCH_DATES:
        kind = "fhir" if endpoint.route.startswith("fhir/") else "date-time"
        return dict.fromkeys(COMPUTED_SEARCH_DATES[endpoint.name], kind)
    filterset = filterset_of(endpoint) if endpoint.is_list else None
    found = {}
    for name, declared in (filterset.base_filters if filterset else {}).items():
        if isinstance(declared, FhirDateFilter):
            found[name] = "date" if declared.date_only else "fhir"
        elif isinstance(declared, DATE_FILTER_TYPES):
            found[name] = "date" if isinstance(declared, DateFilter) else "date-time"
    return found


def _routes_with_dates():
    for endpoint in api_endpoints():
        params = _date_params(endpoint)
        if params:
            yield pytest.param(endpoint, params, id=str(endpoint))


ROUTES_WITH_DATES = list(_routes_with_dates())


def test_the_walk_finds_every_kind_of_date_parameter():
    kinds = {(str(p.values[0]), name, kind) for p in ROUTES_WITH_DATES for name, kind in p.values[1].items()}
    assert len(ROUTES_WITH_DATES) >= 20
    assert {
        ("/api/v1/slots/", "end", "date-time"),
        ("/fhir/R4/Slot", "start", "fhir"),
        ("/fhir/R4/Patient", "birthdate", "date"),
        ("/fhir/R4/QuestionnaireResponse", "authored", "fhir"),
        ("/api/v1/audit-events/", "occurred_before", "date-time"),
    } <= kinds


@pytest.mark.django_db
@pytest.mark.parametrize(("endpoint", "params"), ROUTES_WITH_DATES)
def test_an_impossible_or_out_of_range_date_in_any_date_parameter_is_400(endpoint, params, clinic, owner):
    client = APIClient()
    client.force_authenticate(user=owner)
    obj = make(endpoint.model, clinic)
    for case, (earlier, later) in BAD_DATES.items():  # one request per case, every date parameter at once
        query = dict(endpoint.query(obj)) if endpoint.query else {}
        for (name, kind), value in zip(params.items(), [earlier, *[later] * len(params)], strict=False):
            if kind == "fhir":
                # FHIR Slot takes a window (ge, lt) in one parameter; the other searches a prefixed value.
                query[name] = [f"ge{earlier}", f"lt{later}"] if name == "start" else f"ge{value}"
            else:
                query[name] = BAD_DAYS[case] if kind == "date" else value
        response = client.get(endpoint.url(), query)
        where = f"GET {endpoint} with {case}: {query}"
        assert response.status_code == 400, f"{where}: {response.status_code} {response.content[:300]!r}"
        assert is_error(response), where
        assert set(error_fields(response)) & {*params, "end"}, f"{where}: {response.content[:400]!r}"


def _routes_with_id_filters():
    for endpoint in api_endpoints():
        filterset = filterset_of(endpoint) if endpoint.is_list else None
        names = [
            name
            for name, declared in (filterset.base_filters if filterset else {}).items()
            if isinstance(declared, (NumberFilter, ModelChoiceFilter, ModelMultipleChoiceFilter, FhirReferenceFilter))
        ]
        if names:
            yield pytest.param(endpoint, names, id=str(endpoint))


@pytest.mark.django_db
@pytest.mark.parametrize(("endpoint", "names"), list(_routes_with_id_filters()))
def test_numbers_no_row_can_have_in_every_number_filter_are_never_a_5xx(endpoint, names, clinic, owner):
    """An id filter (a row of the clinic) says "Not found."; a plain number filter matches nothing."""
    client = APIClient()
    client.force_authenticate(user=owner)
    make(endpoint.model, clinic)
    for case, number in BAD_NUMBERS.items():  # one request per case, every number filter at once
        response = client.get(endpoint.url(), dict.fromkeys(names, number))
        where = f"GET {endpoint} with {case} in {names}"
        assert response.status_code in (200, 400), f"{where}: {response.status_code} {response.content[:300]!r}"
        if response.status_code == 200:
            assert not response.json().get("entry", response.json().get("results")), where
        else:
            assert is_error(response), where
