"""The patient's page to fill a measure: render, errors, blanks asked once, stored, used links."""

from __future__ import annotations

import pytest

from outcomes.models import MeasureText, OutcomeResponse
from outcomes.services import outcome_link_create
from tests.outcomes.conftest import lefs

pytestmark = pytest.mark.django_db


def test_the_lefs_page_lists_twenty_activities_with_five_answers_and_is_never_cached(client, patient):
    link = outcome_link_create(patient=patient, measure="lefs")
    response = client.get(f"/outcomes/{link.token}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('type="radio" name="q') == 100
    assert "Walking a mile" in body
    assert "Extreme difficulty or unable to perform activity" in body
    assert "no-store" in response["Cache-Control"]
    assert "<script>" not in body  # CSP: no inline script


def test_a_complete_form_is_scored_and_thanks_the_patient(client, patient):
    link = outcome_link_create(patient=patient, measure="lefs")
    response = client.post(f"/outcomes/{link.token}/", lefs(52))
    assert response.status_code == 302
    assert response["Location"] == f"/outcomes/{link.token}/thanks/"
    assert OutcomeResponse.objects.get().score == 52
    assert "Thank you" in client.get(response["Location"]).content.decode()
    again = client.get(f"/outcomes/{link.token}/")
    assert again.status_code == 410


def test_blanks_are_asked_about_once_then_stored_incomplete(client, patient):
    link = outcome_link_create(patient=patient, measure="lefs")
    answers = lefs(52) | {"q4": ""}
    first = client.post(f"/outcomes/{link.token}/", answers)
    assert first.status_code == 400
    assert "1 question left blank" in first.content.decode()
    assert not OutcomeResponse.objects.exists()
    second = client.post(f"/outcomes/{link.token}/", answers | {"send_with_blanks": "yes"})
    assert second.status_code == 302
    response = OutcomeResponse.objects.get()
    assert (response.status, response.score, response.missing) == ("incomplete", None, ["q4"])


def test_an_impossible_value_is_a_400_naming_the_item_and_stores_nothing(client, patient):
    link = outcome_link_create(patient=patient, measure="nprs")
    response = client.post(f"/outcomes/{link.token}/", {"pain": "14", "send_with_blanks": "yes"})
    assert response.status_code == 400
    assert 'href="#q-pain"' in response.content.decode()
    assert not OutcomeResponse.objects.exists()


def test_the_psfs_page_takes_named_activities(client, patient):
    link = outcome_link_create(patient=patient, measure="psfs")
    response = client.post(
        f"/outcomes/{link.token}/",
        {"activity_1": "Kneeling to garden", "rating_1": "3", "activity_2": "Stairs", "rating_2": "6"},
    )
    assert response.status_code == 302
    stored = OutcomeResponse.objects.get()
    assert stored.score == 4.5
    assert stored.answers["activities"][0] == {"name": "Kneeling to garden", "rating": 3}


def test_a_tampered_or_intake_token_is_a_404(client, patient):
    link = outcome_link_create(patient=patient, measure="nprs")
    assert client.get(f"/outcomes/{link.token[:-1]}x/").status_code == 404
    assert client.get(f"/outcomes/{link.nonce}/").status_code == 404


def test_answers_of_zero_are_kept_when_the_page_is_shown_again(client, patient):
    link = outcome_link_create(patient=patient, measure="lefs")
    answers = {f"q{n}": 0 for n in range(1, 21)} | {"q5": ""}
    body = client.post(f"/outcomes/{link.token}/", answers).content.decode()
    assert body.count('value="0" checked') == 19


def test_a_licensed_measure_whose_wording_was_removed_is_a_410_not_an_error(client, clinic, patient):
    items = {f"q{n}": {"text": f"Item {n}", "options": ["a", "b", "c", "d", "e"]} for n in range(1, 12)}
    text = MeasureText.objects.create(clinic=clinic, measure="quickdash", items=items, licence_note="IWH 2026")
    link = outcome_link_create(patient=patient, measure="quickdash")
    assert "Item 11" in client.get(f"/outcomes/{link.token}/").content.decode()
    text.delete()
    assert client.get(f"/outcomes/{link.token}/").status_code == 410
