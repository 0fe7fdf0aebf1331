"""REST API errors are served as `application/problem+json` (RFC 9457) with the same fields as
before, so JSON clients keep working; a key refused for a scope hears which one."""

from __future__ import annotations

import json

import pytest

from clinic.services import api_key_create

pytestmark = pytest.mark.django_db
ERROR_KEYS = {"type", "title", "status", "detail", "errors"}


def test_errors_are_problem_json_with_the_same_fields(owner_api):
    for response, status in (
        (owner_api.get("/api/v1/patients/", {"udpated_since": "x"}), 400),
        (owner_api.get("/api/v1/patients/999999999/"), 404),
        (owner_api.get("/api/v1/rooms/1.5/"), 404),  # no route: handler404
        (owner_api.post("/api/v1/patients/", "name=x", content_type="application/x-www-form-urlencoded"), 415),
    ):
        assert response.status_code == status
        assert response["Content-Type"] == "application/problem+json"
        body = json.loads(response.content)  # a plain JSON parser reads it as before
        assert set(body) == ERROR_KEYS
        assert body["status"] == status


def test_a_key_without_the_scope_is_told_which_scope(api, clinic):
    _, key = api_key_create(clinic=clinic, name="calendar", scopes=["clinic:read", "appointments:write"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    for url, scope in (("/api/v1/patients/", "patients:read"), ("/api/v1/slots/", "appointments:read")):
        response = api.get(url)
        assert response.status_code == 403
        assert response["Content-Type"] == "application/problem+json"
        assert scope in response.json()["detail"]
