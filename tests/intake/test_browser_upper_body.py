"""A patient fills the upper-body intake on a phone (390x844) with an urgent answer, and the
therapist sees the flag; every control the patient taps measures at least 44 px each way.

Same pattern as test_browser.py: Debian's Chromium through Playwright, no ORM calls inside
the `sync_playwright` block (it keeps an event loop in this thread).
"""

from __future__ import annotations

import os

import pytest

from intake.models import IntakeChoice, IntakeSettings, IntakeSubmission
from intake.services import intake_links_create
from tests.factories import AppointmentFactory, PatientFactory, default_questionnaire
from tests.intake.test_browser import CHROMIUM, CHROMIUM_ARGS, choose

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MIN_TAP = 44  # px: WCAG 2.5.5 / Apple HIG; the house style asks for it on phones


def tap_sizes(page, selector: str) -> list[tuple[str, float, float]]:
    """(text, width, height) of every visible element matching `selector`."""
    sizes = []
    for element in page.locator(selector).all():
        if not element.is_visible():
            continue
        box = element.bounding_box()
        sizes.append(((element.inner_text() or element.get_attribute("name") or "").strip()[:30], box["width"],
                      box["height"]))  # fmt: skip
    return sizes


def assert_tappable(page, selector: str, measured: dict) -> None:
    sizes = tap_sizes(page, selector)
    assert sizes, f"nothing visible matches {selector}"
    small = [s for s in sizes if s[1] < MIN_TAP or s[2] < MIN_TAP]
    assert small == [], f"{selector}: under {MIN_TAP} px: {small}"
    measured[selector] = min(min(w, h) for _, w, h in sizes)


def test_the_upper_body_intake_on_a_phone_raises_an_urgent_flag_the_therapist_sees(
    live_server, clinic, therapist, practitioner
):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"The browser test needs Chromium at {CHROMIUM} (Debian packages 'chromium', 'chromium-driver').")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)
    default_questionnaire()
    IntakeSettings.objects.create(clinic=clinic, intakes=IntakeChoice.UPPER)
    patient = PatientFactory(clinic=clinic, given_name="Omar", family_name="Haddad")
    AppointmentFactory(clinic=clinic, patient=patient, practitioner=practitioner)
    [link] = intake_links_create(patient=patient)
    start_url = live_server.url + f"/intake/{link.token}/"
    patient_admin_url = f"/admin/patients/patient/{patient.pk}/change/"
    measured: dict[str, float] = {}

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        # At desktop width the pain scale is one row of eleven.
        desktop = browser.new_page(viewport={"width": 1366, "height": 900})
        desktop.goto(start_url)
        desktop.get_by_role("link", name="Start").click()
        tops = {round(box["y"]) for box in (e.bounding_box() for e in desktop.locator("#q-pain_now label").all())}
        assert len(tops) == 1
        desktop.close()

        page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        page.goto(start_url)
        expect(page.get_by_role("heading", name="Hello Omar")).to_be_visible()
        expect(page.get_by_text("Neck, shoulder, arm and hand pain")).to_be_visible()
        promised = int(page.get_by_text("short sections").inner_text().split()[0])
        page.get_by_role("link", name="Start").click()

        # Where it hurts: the arm regions, each with a side.
        expect(page.get_by_text(f"Section 1 of {promised}: Where it hurts")).to_be_visible()
        pain_map = page.locator("#q-pain_regions")
        pain_map.get_by_label("Elbow").select_option("right")
        pain_map.get_by_label("Forearm").select_option("right")
        choose(page, "pain_now", "5")
        choose(page, "pain_worst", "7")
        choose(page, "pain_radiates", "No")
        expect(page.locator("#q-numbness_regions")).to_be_hidden()
        choose(page, "numbness_tingling", "Yes")
        expect(page.locator("#q-numbness_regions")).to_be_visible()
        page.locator("#q-numbness_regions").get_by_label("Fingers / thumb").select_option("right")
        # Tap targets on a phone: the 0-10 scale (about 29 px wide before issue 16), yes/no and
        # choice rows, the side pickers, the buttons and the back link.
        assert_tappable(page, "#q-pain_now .scale span", measured)
        assert_tappable(page, ".choice", measured)
        assert_tappable(page, ".region select", measured)
        assert_tappable(page, "button", measured)
        assert_tappable(page, "a.back", measured)
        page.get_by_role("button", name="Continue").click()

        expect(page.get_by_text(f"Section 2 of {promised}: When it started")).to_be_visible()
        choose(page, "duration", "More than 3 months")
        choose(page, "onset_how", "Gradually")
        choose(page, "aggravating", "Typing or using a mouse")
        page.get_by_role("button", name="Continue").click()

        expect(page.get_by_role("heading", name="What may have caused it")).to_be_visible()
        choose(page, "causes", "The same hand or arm movements over and over, at work or at home")
        choose(page, "diagnoses", "Tennis elbow (pain on the outside of the elbow)")
        page.get_by_role("button", name="Continue").click()
        choose(page, "surgery", "No")
        page.get_by_role("button", name="Continue").click()
        choose(page, "anticoagulants", "No")
        choose(page, "conditions", "None of these")
        page.get_by_role("button", name="Continue").click()

        # Safety: one arm swollen and bluish, the urgent answer.
        expect(page.get_by_text(f"of {promised}: Safety questions")).to_be_visible()
        expect(page.locator("#q-arm_swollen_side")).to_be_hidden()
        choose(page, "arm_swollen", "Yes")
        choose(page, "arm_swollen_side", "Left")
        choose(page, "arm_swollen_signs", "Bluish in colour")
        for question in ("both_hands_clumsy", "unsteady_walking", "neck_shock", "bladder_bowel", "sudden_neck_pain",
                         "unusual_headache", "exertion_arm_pain", "arm_weaker", "muscle_wasting", "fall_on_hand",
                         "neck_injury", "hot_swollen_joint", "fever", "unwell", "weight_loss", "night_pain",
                         "drooping_eyelid"):  # fmt: skip
            choose(page, question, "No")
        choose(page, "head_symptoms", "None of these")
        assert_tappable(page, "#q-arm_swollen_signs .choice", measured)
        page.get_by_role("button", name="Continue").click()

        page.get_by_label("What would you like to get back to").fill("Lift my daughter without elbow pain.")
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_text(f"Section {promised} of {promised}: Consent")).to_be_visible()
        choose(page, "consent_to_treatment", "Yes")
        page.get_by_label("Type your full name as your signature").fill("Omar Haddad")
        page.get_by_role("button", name="Continue").click()

        expect(page.get_by_role("heading", name="Check your answers")).to_be_visible()
        expect(page.get_by_text(f"All {promised} sections done")).to_be_visible()
        expect(page.get_by_text("Elbow (right); Forearm (right)")).to_be_visible()
        assert_tappable(page, ".summary-head a", measured)
        page.get_by_role("button", name="Send my answers").click()
        expect(page.get_by_role("heading", name="Thank you, your answers are sent")).to_be_visible()

        page.goto(live_server.url + "/admin/login/?next=" + patient_admin_url)
        page.get_by_label("Username").fill(therapist.username)
        page.get_by_label("Password").fill("a-long-test-password")
        page.get_by_role("button", name="Log in").click()
        flag = page.locator(".flag.urgent")
        expect(flag).to_contain_text("Possible deep vein thrombosis in the arm: refer before treatment")
        expect(flag).to_contain_text("arm (left)")
        browser.close()

    print("smallest side of each tap target (px):", measured)
    submission = IntakeSubmission.objects.get(patient=patient)
    assert submission.questionnaire.code == IntakeChoice.UPPER
    assert submission.answers["numbness_regions"] == [{"region": "fingers_thumb", "side": "right"}]
    assert [(f.rule_code, f.severity, f.region, f.side) for f in patient.flags.all()] == [
        ("dvt_suspected", "urgent", "arm", "left")
    ]
