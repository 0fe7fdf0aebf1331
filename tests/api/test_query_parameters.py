"""Generated over every list under /api/v1/: date-time filters take any ISO 8601 offset.

PostgreSQL refuses offsets beyond +-15:59 that ISO 8601 allows (`-22:42`), so a filter that
passed the value through answered 500; `UtcIsoDateTimeFilter` converts it to UTC first.
"""

from __future__ import annotations

import pytest
from django_filters import IsoDateTimeFilter
from rest_framework.test import APIClient

from clinic.api.conventions import UtcIsoDateTimeFilter
from tests.api.endpoints import api_endpoints


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
    assert isinstance(declared, UtcIsoDateTimeFilter), (
        f"{endpoint}?{name}: use clinic.api.conventions.UtcIsoDateTimeFilter"
    )
    client = APIClient()
    client.force_authenticate(user=owner)
    assert client.get(endpoint.url(), {name: "2026-01-01T00:00:00-22:42"}).status_code == 200
    response = client.get(endpoint.url(), {name: "9999-12-31T23:59:59-05:00"})
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [name]
