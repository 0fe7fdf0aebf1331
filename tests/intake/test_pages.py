"""The patient's pages and the link lifecycle: open, resume, errors, submit, expired, used,
revoked, tampered, unknown, and the limit on guessing."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from intake.models import IntakeLink, IntakeSubmission
from intake.pages import MISS_LIMIT
from intake.services import intake_link_revoke, intake_submit
from tests.factories import PatientFactory, clean_intake_answers, intake_link

pytestmark = pytest.mark.django_db


@pytest.fixture
def link(clinic):
    clinic.phone = "+1 416 555 0100"
    clinic.save()
    return intake_link(PatientFactory(clinic=clinic, given_name="Maya", family_name="Singh"))


def page(link, name=""):
    return f"/intake/{link.token}/{name}"


def test_the_start_page_greets_the_patient_under_the_clinic_name_and_is_never_cached(client, link):
    response = client.get(page(link))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Hello Maya" in body
    assert "Riverside" in body
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "same-origin"


def test_a_section_with_errors_is_shown_again_with_a_summary_field_errors_and_the_answers_kept(client, link):
    response = client.post(
        page(link, "s/pain/"),
        {
            "pain_regions.knee": "left",
            "pain_now": "7",
            "pain_worst": "",
            "pain_radiates": "maybe",
            "action": "continue",
        },
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert 'class="error-summary"' in body
    assert '<a href="#q-pain_worst">How bad is it at its worst? Please answer this question.</a>' in body
    assert 'id="q-pain_radiates-error">Choose yes or no.' in body
    assert 'aria-invalid="true"' in body
    assert 'value="7" id="q-pain_now-7" checked' in body
    assert '<option value="left" selected>' in body
    link.refresh_from_db()
    assert link.draft_answers == {}


def test_a_valid_section_is_saved_and_a_yes_leads_to_the_dependent_section(client, link):
    response = client.post(
        page(link, "s/pain/"),
        {
            "pain_regions.thigh_back": "left",
            "pain_now": "5",
            "pain_worst": "8",
            "pain_radiates": "yes",
            "numbness_tingling": "no",
        },
    )
    assert response.status_code == 302
    assert response["Location"].endswith("/s/sciatica/")
    link.refresh_from_db()
    assert link.draft_answers["pain_regions"] == [{"region": "thigh_back", "side": "left"}]


def test_with_no_radiating_pain_the_sciatica_section_is_skipped(client, link):
    response = client.post(
        page(link, "s/pain/"),
        {
            "pain_regions.knee": "right",
            "pain_now": "2",
            "pain_worst": "6",
            "pain_radiates": "no",
            "numbness_tingling": "no",
        },
    )
    assert response["Location"].endswith("/s/onset/")
    assert client.get(page(link, "s/sciatica/"))["Location"].endswith("/s/onset/")


def test_save_and_finish_later_keeps_partial_answers_and_the_same_link_resumes_there(client, link):
    response = client.post(page(link, "s/pain/"), {"pain_now": "4", "action": "later"})
    assert response.status_code == 200
    assert "Your answers are saved" in response.content.decode()
    resumed = client.get(page(link))
    body = resumed.content.decode()
    assert "Welcome back" in body
    assert f'href="/intake/{link.token}/s/pain/"' in body
    assert 'value="4" id="q-pain_now-4" checked' in client.get(page(link, "s/pain/")).content.decode()


def test_review_lists_missing_answers_and_submitting_from_the_draft_raises_flags(client, link):
    response = client.post(page(link, "review/"))
    assert response.status_code == 400
    assert "Some answers are still needed" in response.content.decode()
    IntakeLink.objects.filter(pk=link.pk).update(draft_answers=clean_intake_answers(conditions=["pregnancy"]))
    response = client.post(page(link, "review/"))
    assert response.status_code == 302
    assert response["Location"].endswith("/thanks/")
    assert "your answers are sent" in client.get(response["Location"]).content.decode()
    assert IntakeSubmission.objects.get().patient.flags.get().rule_code == "pregnancy"


def test_a_used_link_is_410_and_says_so_without_naming_the_patient(client, link):
    intake_submit(link=link, answers=clean_intake_answers())
    response = client.get(page(link))
    assert response.status_code == 410
    body = response.content.decode()
    assert "already sent" in body
    assert "Maya" not in body
    assert "Singh" not in body
    assert "+1 416 555 0100" in body


def test_an_expired_link_is_410(client, link):
    IntakeLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = client.get(page(link, "s/pain/"))
    assert response.status_code == 410
    assert "expired" in response.content.decode()


def test_a_revoked_link_is_410_even_for_a_saved_draft(client, link, receptionist):
    client.post(page(link, "s/pain/"), {"pain_now": "4", "action": "later"})
    intake_link_revoke(link=link, by=receptionist)
    response = client.post(page(link, "s/pain/"), {"pain_now": "5", "action": "later"})
    assert response.status_code == 410
    assert "no longer active" in response.content.decode()


def test_a_tampered_or_unknown_token_is_404_and_reveals_nothing(client, link, fresh_address):
    nonce, signature = link.token.split(":")
    tampered = f"{nonce[:-1]}{'A' if nonce[-1] != 'A' else 'B'}:{signature}"
    for token in (tampered, "made-up", f"{nonce}:{signature[::-1]}"):
        response = client.get(f"/intake/{token}/", REMOTE_ADDR=fresh_address)
        assert response.status_code == 404
        assert "Riverside" not in response.content.decode()
    IntakeLink.objects.filter(pk=link.pk).delete()
    assert client.get(page(link), REMOTE_ADDR=fresh_address).status_code == 404


def test_guessing_tokens_is_rate_limited_per_address(client, link, fresh_address):
    for attempt in range(MISS_LIMIT):
        assert client.get(f"/intake/guess-{attempt}/", REMOTE_ADDR=fresh_address).status_code == 404
    assert client.get(page(link), REMOTE_ADDR=fresh_address).status_code == 429
    assert client.get(page(link)).status_code == 200  # other addresses are not affected


def test_the_start_page_promises_as_many_sections_as_the_progress_bar_counts(client, link):
    form = link.questionnaire.form
    promised = int(re.search(r"(\d+) short sections", client.get(page(link)).content.decode()).group(1))
    first = form.enabled_sections({})[0]
    body = client.get(page(link, f"s/{first.code}/")).content.decode()
    assert promised == len(form.enabled_sections({}))
    assert f"Section 1 of {promised}: {first.title}" in body
    assert f'<progress value="1" max="{promised}"' in body
    review = client.get(page(link, "review/")).content.decode()
    assert f"All {promised} sections done" in review


def test_a_follow_up_section_keeps_the_promised_total_and_shares_the_number_of_the_section_before(client, link):
    promised = int(re.search(r"(\d+) short sections", client.get(page(link)).content.decode()).group(1))
    assert "some answers add a few follow-up questions" in client.get(page(link)).content.decode()
    client.post(
        page(link, "s/pain/"),
        {"pain_regions.calf": "left", "pain_now": "5", "pain_worst": "8", "pain_radiates": "yes",
         "numbness_tingling": "no"},
    )  # fmt: skip
    follow_up = client.get(page(link, "s/sciatica/")).content.decode()
    assert f"Section 1 of {promised}, follow-up: Pain travelling down the leg" in follow_up
    assert f'<progress value="1" max="{promised}"' in follow_up
    assert f"Section 2 of {promised}: When it started" in client.get(page(link, "s/onset/")).content.decode()
    assert f"{promised} short sections" in client.get(page(link)).content.decode()
