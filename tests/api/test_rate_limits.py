"""Per API key and per user request budgets, set per clinic, counted in Redis."""

from __future__ import annotations

import datetime as dt

import pytest

from clinic.services import api_key_create
from tests.conftest import _client_for

pytestmark = pytest.mark.django_db
MID_MINUTE = dt.datetime(2026, 11, 21, 10, 0, 5, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def clock(time_machine):
    """Budgets are per clock minute: a test must not straddle one."""
    time_machine.move_to(MID_MINUTE, tick=False)
    return time_machine


def _limit(clinic, per_minute: int) -> None:
    clinic.api_rate_limit_per_minute = per_minute
    clinic.save(update_fields=["api_rate_limit_per_minute"])


def test_a_user_over_the_clinics_limit_gets_429_with_retry_after(receptionist_api, clinic):
    _limit(clinic, 3)
    statuses = [receptionist_api.get("/api/v1/rooms/").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    response = receptionist_api.get("/api/v1/rooms/")
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail", "errors"}
    assert body["status"] == 429
    assert body["title"] == "Too many requests"


def test_each_key_and_each_user_has_its_own_budget(api, receptionist_api, owner, clinic):
    _limit(clinic, 2)
    _, first = api_key_create(clinic=clinic, name="one", scopes=["clinic:read"])
    _, second = api_key_create(clinic=clinic, name="two", scopes=["clinic:read"])

    def as_key(raw):
        return api.get("/api/v1/rooms/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code

    assert [as_key(first), as_key(first), as_key(first)] == [200, 200, 429]
    assert [as_key(second), as_key(second)] == [200, 200]
    assert [receptionist_api.get("/api/v1/rooms/").status_code for _ in range(2)] == [200, 200]
    assert _client_for(owner).get("/api/v1/rooms/").status_code == 200


def test_the_limit_is_per_clinic(receptionist_api, other_api, clinic, other_clinic):
    _limit(clinic, 1)
    _limit(other_clinic, 5)
    assert [receptionist_api.get("/api/v1/rooms/").status_code for _ in range(2)] == [200, 429]
    assert [other_api.get("/api/v1/rooms/").status_code for _ in range(5)] == [200] * 5


def test_the_default_is_200_a_minute(clinic):
    assert clinic.api_rate_limit_per_minute == 200


def test_the_budget_comes_back_with_the_next_minute(receptionist_api, clinic, clock):
    _limit(clinic, 2)
    assert [receptionist_api.get("/api/v1/rooms/").status_code for _ in range(3)] == [200, 200, 429]
    refused = receptionist_api.get("/api/v1/rooms/")
    assert int(refused["Retry-After"]) == 55  # the rest of the minute
    clock.move_to(MID_MINUTE + dt.timedelta(seconds=56), tick=False)
    assert receptionist_api.get("/api/v1/rooms/").status_code == 200


def test_a_large_budget_costs_one_counter_not_a_history(api, clinic):
    """Each request adds to one integer per caller and minute, whatever the limit."""
    from django.core.cache import cache

    _limit(clinic, 1_000_000)
    key, raw = api_key_create(clinic=clinic, name="sync", scopes=["clinic:read"])
    for _ in range(5):
        assert api.get("/api/v1/rooms/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    assert cache.get(f"throttle:key:{key.pk}:{int(MID_MINUTE.timestamp() // 60)}") == 5
