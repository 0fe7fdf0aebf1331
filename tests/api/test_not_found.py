import pytest

pytestmark = pytest.mark.django_db


def test_a_url_no_route_matches_is_a_404_in_the_error_format_under_the_api(owner_api):
    response = owner_api.get("/api/v1/rooms/1.5/")
    assert response.status_code == 404
    assert response.json() == {
        "type": "about:blank",
        "title": "Not found",
        "status": 404,
        "detail": "Not found.",
        "errors": {},
    }


def test_outside_the_api_404_stays_a_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_url_no_route_matches_under_fhir_is_an_operation_outcome(owner_api):
    response = owner_api.get("/fhir/R4/Patient/1.5")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/fhir+json"
    [issue] = response.json()["issue"]
    assert issue["code"] == "not-found"
