"""The API conventions every endpoint inherits: auth, clinic scoping, errors, pagination, keys."""

from __future__ import annotations

import pytest
from django.test import override_settings

from clinic.services import api_key_create, api_key_revoke
from tests.factories import PractitionerFactory, RoomFactory, ServiceFactory

pytestmark = pytest.mark.django_db


def test_unauthenticated_request_is_401_in_the_error_format(api):
    response = api.get("/api/v1/practitioners/")
    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail", "errors"}
    assert body["status"] == 401


def test_lists_show_only_the_callers_clinic(receptionist_api, clinic, other_clinic):
    mine = PractitionerFactory(clinic=clinic)
    PractitionerFactory(clinic=other_clinic)
    response = receptionist_api.get("/api/v1/practitioners/")
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [mine.id]


def test_another_clinics_object_is_404_not_403(other_api, clinic):
    room = RoomFactory(clinic=clinic)
    response = other_api.get(f"/api/v1/rooms/{room.id}/")
    assert response.status_code == 404
    assert response.json()["title"] == "Not found"


def test_page_size_over_the_maximum_is_a_field_error(owner_api):
    response = owner_api.get("/api/v1/services/?page_size=101")
    assert response.status_code == 400
    assert "page_size" in response.json()["errors"]


def test_invalid_cursor_is_a_field_error(owner_api):
    response = owner_api.get("/api/v1/services/?cursor=not-a-cursor")
    assert response.status_code == 400
    assert "cursor" in response.json()["errors"]


def test_cursor_pages_walk_every_row_once(owner_api, clinic):
    ids = {ServiceFactory(clinic=clinic).id for _ in range(5)}
    seen, url = [], "/api/v1/services/?page_size=2"
    while url:
        page = owner_api.get(url).json()
        seen += [row["id"] for row in page["results"]]
        url = page["next"]
    assert sorted(seen) == sorted(ids)


def test_api_key_reads_its_own_clinic_with_the_right_scope(api, clinic, other_clinic):
    mine = ServiceFactory(clinic=clinic)
    ServiceFactory(clinic=other_clinic)
    key, raw = api_key_create(clinic=clinic, name="website", scopes=["clinic:read"])
    response = api.get("/api/v1/services/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [mine.id]
    key.refresh_from_db()
    assert key.last_used_at is not None
    assert raw not in (key.digest, key.prefix)


def test_api_key_without_the_scope_is_403(api, clinic):
    _, raw = api_key_create(clinic=clinic, name="accounting", scopes=["patients:read"])
    assert api.get("/api/v1/services/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 403


def test_revoked_or_unknown_key_is_401(api, clinic):
    key, raw = api_key_create(clinic=clinic, name="old", scopes=["clinic:read"])
    api_key_revoke(key=key)
    assert api.get("/api/v1/services/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
    assert api.get("/api/v1/services/", HTTP_AUTHORIZATION="Bearer ck_unknown").status_code == 401


def test_unknown_scopes_are_refused(clinic):
    with pytest.raises(ValueError, match="Unknown scopes"):
        api_key_create(clinic=clinic, name="x", scopes=["everything:all"])


def test_responses_carry_a_request_id(owner_api):
    response = owner_api.get("/api/v1/rooms/", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"


def test_schema_and_docs_are_served(owner_api, client):
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


SCHEMA_URLS = ("/api/schema/", "/api/schema/?format=json", "/api/docs/", "/api/docs/?script=")


@override_settings(API_DOCS_PUBLIC=False)
@pytest.mark.parametrize("url", SCHEMA_URLS)
def test_in_production_the_schema_and_docs_refuse_anonymous_callers(client, url):
    response = client.get(url)
    assert response.status_code == 401
    assert response.json()["title"] == "Not authenticated"


@override_settings(API_DOCS_PUBLIC=False)
@pytest.mark.parametrize("url", SCHEMA_URLS)
def test_in_production_staff_and_api_keys_read_the_schema_and_docs(client, owner, receptionist, clinic, url):
    _, raw = api_key_create(clinic=clinic, name="integrator", scopes=["clinic:read"])
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    assert client.get(url, HTTP_AUTHORIZATION="Bearer not-a-key").status_code == 401
    for user in (owner, receptionist):
        client.force_login(user)
        assert client.get(url).status_code == 200
        client.logout()


@override_settings(API_DOCS_PUBLIC=False)
def test_in_production_a_signed_in_user_of_no_clinic_is_refused(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory())
    assert client.get("/api/schema/").status_code == 403


@override_settings(API_DOCS_PUBLIC=True)
@pytest.mark.parametrize("url", SCHEMA_URLS)
def test_in_development_the_schema_and_docs_are_public(client, url):
    assert client.get(url).status_code == 200
