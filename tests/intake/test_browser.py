"""A patient fills the default intake in headless Chromium at a phone's size, then a
therapist sees the flags on the patient's admin page.

Drives Debian's Chromium (packages `chromium`, `chromium-driver`; `make test` installs
them) through Playwright's Python package; never `playwright install`.
"""

from __future__ import annotations

import os

import pytest

from intake.models import IntakeSubmission
from tests.factories import AppointmentFactory, PatientFactory, intake_link

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run",
]  # fmt: skip

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def choose(page, question: str, label: str) -> None:
    page.locator(f"#q-{question}").get_by_text(label, exact=True).click()


def test_a_patient_fills_the_intake_on_a_phone_and_the_therapist_sees_the_flags(
    live_server, clinic, therapist, practitioner
):
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"The browser test needs Chromium at {CHROMIUM}: install the Debian packages "
            "'chromium' and 'chromium-driver' (make test does this when it runs as root with apt-get)."
        )
    from playwright.sync_api import expect, sync_playwright

    # A ceiling, not a measurement: the machine running the suite may be busy.
    expect.set_options(timeout=20_000)

    patient = PatientFactory(clinic=clinic, given_name="Maya", family_name="Singh")
    # Booked with the therapist, who is therefore her usual practitioner (clinic.security.access).
    AppointmentFactory(clinic=clinic, patient=patient, practitioner=practitioner)
    link = intake_link(patient)
    start_url = live_server.url + f"/intake/{link.token}/"
    patient_admin_url = live_server.url + f"/admin/patients/patient/{patient.pk}/change/"

    # No ORM calls inside this block: Playwright's sync API keeps an event loop in this thread.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        page.goto(start_url)
        expect(page.get_by_role("heading", name="Hello Maya")).to_be_visible()
        page.get_by_role("link", name="Start").click()

        # Where it hurts: leave "worst" blank to get an error, then fix it.
        expect(page.get_by_text("Section 1 of")).to_be_visible()
        page.locator("#q-pain_regions").get_by_label("Calf").select_option("left")
        page.locator("#q-pain_regions").get_by_label("Back of thigh").select_option("left")
        choose(page, "pain_now", "6")
        choose(page, "pain_radiates", "Yes")
        choose(page, "numbness_tingling", "No")
        page.get_by_role("button", name="Continue").click()
        summary = page.get_by_role("alert")
        expect(summary).to_contain_text("How bad is it at its worst? Please answer this question.")
        expect(page.locator("#q-pain_worst-error")).to_have_text("Please answer this question.")
        expect(page.locator("#q-pain_regions").get_by_label("Calf")).to_have_value("left")  # answers kept on re-show
        choose(page, "pain_worst", "8")
        page.get_by_role("button", name="Continue").click()

        # The sciatica section is asked because the pain travels down the leg.
        expect(page.get_by_role("heading", name="Pain travelling down the leg")).to_be_visible()
        choose(page, "sciatica_side", "Left")
        choose(page, "sciatica_symptoms", "Tingling")
        page.get_by_role("button", name="Continue").click()

        choose(page, "duration", "More than 3 months")
        choose(page, "onset_how", "Gradually")
        choose(page, "aggravating", "Running")
        page.get_by_role("button", name="Continue").click()
        choose(page, "causes", "Running or walking up or down hills")
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("button", name="Continue").click()  # back and spine: optional
        choose(page, "surgery", "No")
        page.get_by_role("button", name="Continue").click()
        choose(page, "anticoagulants", "No")
        choose(page, "conditions", "None of these")
        page.get_by_role("button", name="Continue").click()

        # Safety: "Which calf?" shows only after "yes".
        expect(page.locator("#q-calf_swollen_side")).to_be_hidden()
        choose(page, "calf_swollen", "Yes")
        expect(page.locator("#q-calf_swollen_side")).to_be_visible()
        choose(page, "calf_swollen_side", "Left")
        for question in ("saddle_numbness", "bladder_bowel", "both_legs_weak", "progressive_weakness", "foot_drop",
                         "recent_trauma", "fever", "unwell", "weight_loss", "night_pain"):  # fmt: skip
            choose(page, question, "No")
        page.get_by_role("button", name="Continue").click()

        page.get_by_label("What would you like to get back to").fill("Walk the dog without calf pain.")
        page.get_by_role("button", name="Continue").click()
        choose(page, "consent_to_treatment", "Yes")
        page.get_by_label("Type your full name as your signature").fill("Maya Singh")
        page.get_by_role("button", name="Continue").click()

        expect(page.get_by_role("heading", name="Check your answers")).to_be_visible()
        expect(page.get_by_text("Calf (left)")).to_be_visible()
        page.get_by_role("button", name="Send my answers").click()
        expect(page.get_by_role("heading", name="Thank you, your answers are sent")).to_be_visible()

        # The therapist opens the patient: the urgent flag is on top.
        page.goto(live_server.url + "/admin/login/?next=" + patient_admin_url.removeprefix(live_server.url))
        page.get_by_label("Username").fill(therapist.username)
        page.get_by_label("Password").fill("a-long-test-password")
        page.get_by_role("button", name="Log in").click()
        flag = page.locator(".flag.urgent")
        expect(flag).to_contain_text("Possible deep vein thrombosis: refer before treatment")
        expect(flag).to_contain_text("leg (left)")
        expect(page.get_by_text("Walk the dog without calf pain.")).to_be_visible()
        browser.close()

    submission = IntakeSubmission.objects.get(patient=patient)
    assert submission.answers["sciatica_side"] == "left"
    assert [(f.rule_code, f.region, f.side) for f in patient.flags.all()] == [("dvt_suspected", "leg", "left")]
