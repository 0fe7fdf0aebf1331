"""Idempotency-Key on POST (clinic.api.idempotency), through a viewset that opts in like the
patients, appointments and intake-links viewsets do."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from clinic.api.idempotency import IDEMPOTENCY_TTL, idempotency_records_delete_expired
from clinic.models import IdempotencyRecord, IdempotencyStatus, Location
from clinic.services import api_key_create
from clinic.tasks import delete_expired_idempotency_records
from tests.api.urls import Gate, IdempotentLocationViewSet

pytestmark = pytest.mark.urls("tests.api.urls")

URL = "/api/v1/test-only/idempotent-locations/"


def _post(client, body, key="retry-1"):
    return client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_a_retry_with_the_same_key_replays_the_first_response(owner_api, clinic):
    first = _post(owner_api, {"name": "Downtown"})
    again = _post(owner_api, {"name": "Downtown"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Location.objects.filter(clinic=clinic).count() == 1
    record = IdempotencyRecord.objects.get()
    assert record.status == IdempotencyStatus.COMPLETED
    assert record.expires_at - record.created_at >= dt.timedelta(hours=24)


@pytest.mark.django_db
def test_the_same_key_with_a_different_body_is_422_and_writes_nothing(owner_api, clinic):
    _post(owner_api, {"name": "Downtown"})
    response = _post(owner_api, {"name": "Uptown"})
    assert response.status_code == 422
    assert set(response.json()) == {"type", "title", "status", "detail", "errors"}
    assert list(Location.objects.values_list("name", flat=True)) == ["Downtown"]


@pytest.mark.django_db
def test_keys_belong_to_one_caller(owner_api, api, clinic):
    _, raw = api_key_create(clinic=clinic, name="widget", scopes=["clinic:write"])
    _post(owner_api, {"name": "Downtown"})
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    by_key = _post(api, {"name": "Downtown West"})
    assert by_key.status_code == 201
    assert "Idempotent-Replayed" not in by_key
    assert Location.objects.count() == 2
    assert sorted(IdempotencyRecord.objects.values_list("principal", flat=True))[0].startswith("key:")


@pytest.mark.django_db
def test_a_refused_first_attempt_stores_nothing_so_the_fixed_retry_runs(owner_api):
    refused = _post(owner_api, {"name": ""})
    assert refused.status_code == 400
    assert not IdempotencyRecord.objects.exists()
    fixed = _post(owner_api, {"name": "Downtown"})
    assert fixed.status_code == 201
    assert Location.objects.count() == 1


@pytest.mark.django_db
def test_without_the_header_nothing_is_recorded(owner_api):
    assert owner_api.post(URL, {"name": "A"}, format="json").status_code == 201
    assert owner_api.post(URL, {"name": "B"}, format="json").status_code == 201
    assert Location.objects.count() == 2
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "x" * 256, "naïve"])
def test_unusable_keys_are_field_errors(owner_api, key):
    response = _post(owner_api, {"name": "A"}, key=key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["errors"]
    assert not Location.objects.exists()


def _in_thread(user, body, key, results, index):
    try:
        client = APIClient()
        client.force_authenticate(user=user)
        results[index] = _post(client, body, key)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_retry_while_the_first_request_runs_is_409(owner, clinic):
    gate = Gate()
    IdempotentLocationViewSet.gate = gate
    results = [None]
    try:
        first = threading.Thread(target=_in_thread, args=(owner, {"name": "Downtown"}, "slow", results, 0))
        first.start()
        assert gate.entered.wait(timeout=60)
        client = APIClient()
        client.force_authenticate(user=owner)
        IdempotentLocationViewSet.gate = None
        retry = _post(client, {"name": "Downtown"}, "slow")
        assert retry.status_code == 409
        assert retry.json()["status"] == 409
    finally:
        gate.release.set()
        first.join()
        IdempotentLocationViewSet.gate = None
    assert results[0].status_code == 201
    replay = _post(client, {"name": "Downtown"}, "slow")
    assert replay.status_code == 201
    assert replay.json() == results[0].json()
    assert Location.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_create_one_row(owner, clinic):
    callers = 6
    start = threading.Barrier(callers)
    results: list = [None] * callers

    def call(index):
        start.wait(timeout=60)
        _in_thread(owner, {"name": "Downtown"}, "burst", results, index)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in results)
    assert Location.objects.filter(clinic=clinic).count() == 1
    assert set(statuses) <= {201, 409}
    created = [r for r in results if r.status_code == 201]
    assert len([r for r in created if "Idempotent-Replayed" not in r]) == 1
    assert all(r.json() == created[0].json() for r in created)


@pytest.mark.django_db
def test_cleanup_removes_only_records_past_their_24_hours(owner_api):
    _post(owner_api, {"name": "Old"}, key="old")
    _post(owner_api, {"name": "New"}, key="new")
    IdempotencyRecord.objects.filter(key="old").update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert delete_expired_idempotency_records() == 1
    assert delete_expired_idempotency_records() == 0
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
    assert idempotency_records_delete_expired(now=timezone.now() + IDEMPOTENCY_TTL + dt.timedelta(minutes=1)) == 1


@pytest.mark.django_db
def test_an_expired_key_can_be_used_again(owner_api):
    _post(owner_api, {"name": "Downtown"})
    IdempotencyRecord.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = _post(owner_api, {"name": "Uptown"})
    assert response.status_code == 201
    assert Location.objects.count() == 2
