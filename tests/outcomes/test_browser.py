"""In headless Chromium: a patient fills the LEFS on a phone (blank item asked about, tap targets
of at least 44 px), then the therapist sees the LEFS trend with three scores at desktop and phone
sizes. Screenshots go to /tmp/outcomes-*.png for a person to look at.

Debian's Chromium through Playwright's Python package; never `playwright install`.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

import pytest
from django.utils import timezone

from outcomes.demo import COURSES, lefs_answers
from outcomes.models import OutcomeResponse
from outcomes.services import outcome_link_create, outcome_record
from tests.factories import AppointmentFactory, PatientFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run",
]  # fmt: skip
TAP = 44
SHOTS = Path(tempfile.gettempdir())  # outcomes-*.png, for a person to look at

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _chromium():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"The browser test needs Chromium at {CHROMIUM} (Debian packages 'chromium', 'chromium-driver').")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)  # a ceiling, not a measurement
    return expect, sync_playwright


def test_a_patient_fills_the_lefs_on_a_phone(live_server, clinic):
    expect, sync_playwright = _chromium()
    patient = PatientFactory(clinic=clinic, given_name="Noah", family_name="Tremblay")
    link = outcome_link_create(patient=patient, measure="lefs")
    url = live_server.url + f"/outcomes/{link.token}/"
    answers = lefs_answers(47)

    with sync_playwright() as playwright:  # no ORM calls in here
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        page.goto(url)
        expect(page.get_by_role("heading", name="Lower Extremity Functional Scale (LEFS)")).to_be_visible()
        labels = page.locator("label.choice")
        assert labels.count() == 100
        for index in range(labels.count()):
            box = labels.nth(index).bounding_box()
            assert box["height"] >= TAP, box
            assert box["width"] >= TAP, box
        options = {0: "Extreme difficulty or unable to perform activity", 1: "Quite a bit of difficulty",
                   2: "Moderate difficulty", 3: "A little bit of difficulty", 4: "No difficulty"}  # fmt: skip
        for code, value in answers.items():
            if code != "q12":  # "Walking a mile" left blank at first
                page.locator(f"#q-{code}").get_by_text(options[value], exact=True).click()
        page.screenshot(path=SHOTS / "outcomes-fill-phone.png", full_page=False)
        page.get_by_role("button", name="Send my answers").click()
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("1 question left blank")
        expect(alert.get_by_role("link", name="Question 12")).to_be_visible()
        page.screenshot(path=SHOTS / "outcomes-blank-phone.png", full_page=False)
        expect(page.locator("#q-q1 input:checked")).to_have_count(1)  # answers kept
        page.locator("#q-q12").get_by_text(options[answers["q12"]], exact=True).click()
        page.get_by_role("button", name="Send my answers").click()
        expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
        browser.close()

    response = OutcomeResponse.objects.get(patient=patient)
    assert (response.status, response.score) == ("complete", 47)


def test_the_therapist_sees_the_lefs_trend_with_three_scores(live_server, clinic, therapist, practitioner):
    expect, sync_playwright = _chromium()
    patient = PatientFactory(clinic=clinic, given_name="Noah", family_name="Tremblay")
    AppointmentFactory(clinic=clinic, patient=patient, practitioner=practitioner)  # his therapist
    today = timezone.localdate(timezone.now(), clinic.tz)
    demo_scores = next(scores for *_, measure, scores, _ in COURSES if measure == "lefs")  # the demo's 38, 49, 61
    for weeks_ago, total in demo_scores:
        outcome_record(patient=patient, measure="lefs", answers=lefs_answers(total),
                       recorded_on=today - dt.timedelta(weeks=weeks_ago), by=therapist)  # fmt: skip
    admin_url = f"/admin/patients/patient/{patient.pk}/change/"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for width, height, name in ((1366, 900, "desktop"), (390, 844, "phone")):
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(live_server.url + "/admin/login/?next=" + admin_url)
            page.get_by_label("Username").fill(therapist.username)
            page.get_by_label("Password").fill("a-long-test-password")
            page.get_by_role("button", name="Log in").click()
            chart = page.locator('svg[data-measure="lefs"]')
            expect(chart).to_be_visible()
            expect(chart.locator("circle.score")).to_have_count(3)
            expect(chart).to_have_attribute("aria-label", "LEFS trend: 38, 49, 61")
            expect(page.locator("#trend-lefs .outcome-summary")).to_contain_text("MCID 9: reached")
            box = chart.bounding_box()
            assert box["width"] > 200  # drawn, not collapsed
            assert box["x"] + box["width"] <= width + 1  # fits the viewport, no sideways scroll
            page.locator("#outcome-trends").screenshot(path=SHOTS / f"outcomes-trend-{name}.png")
            page.screenshot(path=SHOTS / f"outcomes-patient-{name}.png")
            page.close()
        browser.close()
