"""Owners manage API keys and read the audit trail over the API; nobody else can."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from clinic.api.authentication import ALL_SCOPES, api_key_digest
from clinic.models import ApiKey, AuditAction
from clinic.security.audit import audit_record
from clinic.services import api_key_create
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def test_owner_creates_a_key_and_sees_it_once(owner_api, owner, clinic):
    response = owner_api.post("/api/v1/api-keys/", {"name": "website", "scopes": ["clinic:read", "patients:read"]})
    assert response.status_code == 201
    body = response.json()
    key = ApiKey.objects.get(pk=body["id"])
    assert key.digest == api_key_digest(body["key"])
    assert key.clinic == clinic
    assert key.created_by == owner
    assert body["scopes"] == ["clinic:read", "patients:read"]
    assert "digest" not in body
    listed = owner_api.get("/api/v1/api-keys/").json()["results"]
    assert [row["id"] for row in listed] == [key.id]
    assert "key" not in listed[0]
    assert "digest" not in listed[0]
    assert "key" not in owner_api.get(f"/api/v1/api-keys/{key.id}/").json()


def test_the_created_key_authenticates(owner_api, api):
    raw = owner_api.post("/api/v1/api-keys/", {"name": "website", "scopes": ["clinic:read"]}).json()["key"]
    assert api.get("/api/v1/rooms/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200


def test_unknown_scopes_or_fields_are_field_errors_and_nothing_is_written(owner_api):
    response = owner_api.post("/api/v1/api-keys/", {"name": "x", "scopes": ["everything:all"]})
    assert response.status_code == 400
    assert "scopes" in response.json()["errors"]
    response = owner_api.post("/api/v1/api-keys/", {"name": "x", "scopes": ["clinic:read"], "clinic": 99})
    assert response.status_code == 400
    assert response.json()["errors"] == {"clinic": ["Unknown or read-only field."]}
    response = owner_api.post("/api/v1/api-keys/", {"name": "x", "scopes": []})
    assert response.status_code == 400
    assert ApiKey.objects.count() == 0


def test_revoking_a_key_stops_it_and_shows_when(owner_api, api, clinic):
    key, raw = api_key_create(clinic=clinic, name="old", scopes=["clinic:read"])
    response = owner_api.post(f"/api/v1/api-keys/{key.id}/revoke/")
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert response.json()["revoked_at"] is not None
    assert api.get("/api/v1/rooms/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
    assert owner_api.get("/api/v1/api-keys/?is_active=true").json()["results"] == []


def test_keys_list_filters_by_updated_since(owner_api, clinic):
    key, _ = api_key_create(clinic=clinic, name="a", scopes=["clinic:read"])
    later = (timezone.now() + dt.timedelta(minutes=1)).isoformat()
    earlier = (timezone.now() - dt.timedelta(minutes=1)).isoformat()
    assert owner_api.get("/api/v1/api-keys/", {"updated_since": later}).json()["results"] == []
    assert [r["id"] for r in owner_api.get("/api/v1/api-keys/", {"updated_since": earlier}).json()["results"]] == [
        key.id
    ]


@pytest.mark.parametrize("path", ["/api/v1/api-keys/", "/api/v1/audit-events/"])
def test_therapists_and_receptionists_are_refused(therapist_api, receptionist_api, path):
    assert therapist_api.get(path).status_code == 403
    assert receptionist_api.get(path).status_code == 403
    assert receptionist_api.post("/api/v1/api-keys/", {"name": "x", "scopes": ["clinic:read"]}).status_code == 403
    assert ApiKey.objects.count() == 0


@pytest.mark.parametrize("path", ["/api/v1/api-keys/", "/api/v1/audit-events/"])
def test_api_keys_cannot_use_owner_endpoints_even_with_every_scope(api, clinic, path):
    _, raw = api_key_create(clinic=clinic, name="all", scopes=list(ALL_SCOPES))
    response = api.get(path, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 403
    response = api.post(
        "/api/v1/api-keys/", {"name": "minted", "scopes": ["clinic:read"]}, HTTP_AUTHORIZATION=f"Bearer {raw}"
    )
    assert response.status_code == 403
    assert ApiKey.objects.count() == 1


def test_audit_events_list_the_clinics_trail_with_filters(owner_api, owner, therapist, clinic, other_clinic):
    patient = PatientFactory(clinic=clinic)
    viewed = audit_record(action=AuditAction.VIEW, clinic=clinic, obj=patient, patient_id=patient.id, actor=therapist)
    changed = audit_record(action=AuditAction.CHANGE, clinic=clinic, obj=patient, patient_id=patient.id, actor=owner)
    audit_record(action=AuditAction.VIEW, clinic=other_clinic, obj=PatientFactory(clinic=other_clinic))

    def ids(**params):
        response = owner_api.get("/api/v1/audit-events/", params)
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert ids() == [changed.id, viewed.id]
    assert ids(action="view") == [viewed.id]
    assert ids(actor=therapist.id) == [viewed.id]
    assert ids(actor_label="olivia-owner") == [changed.id]
    assert ids(object_type="patients.patient", object_id=str(patient.id)) == [changed.id, viewed.id]
    assert ids(patient=patient.id) == [changed.id, viewed.id]
    assert ids(occurred_after=(viewed.occurred_at + dt.timedelta(hours=1)).isoformat()) == []
    assert ids(occurred_before=(viewed.occurred_at + dt.timedelta(hours=1)).isoformat()) == [changed.id, viewed.id]
    assert ids(updated_since=(viewed.occurred_at - dt.timedelta(hours=1)).isoformat()) == [changed.id, viewed.id]


def test_audit_events_are_read_only(owner_api, clinic):
    event = audit_record(action=AuditAction.VIEW, clinic=clinic)
    assert owner_api.post("/api/v1/audit-events/", {}).status_code == 405
    assert owner_api.delete(f"/api/v1/audit-events/{event.id}/").status_code == 405
    assert owner_api.patch(f"/api/v1/audit-events/{event.id}/", {"reason": "x"}).status_code == 405


def test_bad_audit_filter_values_are_field_errors(owner_api):
    response = owner_api.get("/api/v1/audit-events/", {"action": "explode", "occurred_after": "yesterday"})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"action", "occurred_after"}


def test_a_boolean_filter_it_cannot_read_is_400_not_ignored(owner_api):
    response = owner_api.get("/api/v1/api-keys/", {"is_active": "maybe"})
    assert response.status_code == 400
    assert response.json()["errors"] == {"is_active": ["Must be true or false."]}
    assert owner_api.get("/api/v1/locations/", {"is_active": "true"}).status_code == 200


def test_updated_since_takes_any_iso_offset_postgresql_cannot(owner_api, clinic):
    api_key_create(clinic=clinic, name="a", scopes=["clinic:read"])
    response = owner_api.get("/api/v1/api-keys/", {"updated_since": "1907-02-26T08:56:56.25498-22:42"})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1
    response = owner_api.get("/api/v1/audit-events/", {"occurred_before": "0001-01-01T00:00:00+05:00"})
    assert response.status_code == 400


def test_an_empty_filter_value_is_400_not_ignored(owner_api):
    response = owner_api.get("/api/v1/api-keys/", {"updated_since": ""})
    assert response.status_code == 400
    assert "updated_since" in response.json()["errors"]
