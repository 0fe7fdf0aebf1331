"""The desk journeys of issue 14 in headless Chromium, at 1366x900 and on a 390x844 phone:
the therapist lands on Today and sees the urgent flag on the row at its clinic time; the owner
edits reminder lead times in a form (a bad value is a field error, the preview shows the text,
a good value is saved); each role's landing page shows its panels; the appointment and patient
lists fit a 1366 px screen.

Debian's Chromium through Playwright's Python package; never `playwright install`.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

import pytest
from django.utils import timezone

from clinic.models import ReminderPolicy
from intake.models import FlagSeverity
from sessions.models import Appointment, AppointmentStatus
from tests.factories import (
    AppointmentFactory,
    PatientFactory,
    PatientFlagFactory,
    ServiceFactory,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run",
]  # fmt: skip
PASSWORD = "a-long-test-password"
# Screenshots to look at after a run.
SHOTS = Path(os.environ.get("SCREENSHOT_DIR", tempfile.gettempdir()))
DESKTOP = {"viewport": {"width": 1366, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def chromium():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"The browser test needs Chromium at {CHROMIUM}: install the Debian packages 'chromium'.")


def sign_in(page, base: str, username: str) -> None:
    page.goto(base + "/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


@pytest.fixture
def day(clinic, practitioner):
    """Today in Toronto: Ivy at 09:00, Maya (urgent suspected DVT) at 14:15, both booked."""
    tz = clinic.tz
    today = timezone.now().astimezone(tz).date()
    service = ServiceFactory(clinic=clinic, name="Remedial massage", duration_minutes=60)
    ivy = PatientFactory(clinic=clinic, given_name="Ivy", family_name="Chen")
    maya = PatientFactory(clinic=clinic, given_name="Maya", family_name="Singh")
    for patient, clock in ((ivy, dt.time(9, 0)), (maya, dt.time(14, 15))):
        AppointmentFactory(
            clinic=clinic, patient=patient, practitioner=practitioner, service=service,
            start=dt.datetime.combine(today, clock, tzinfo=tz), status=AppointmentStatus.BOOKED,
        )  # fmt: skip
    PatientFlagFactory(
        clinic=clinic, patient=maya, rule_code="dvt_suspected", severity=FlagSeverity.URGENT,
        title="Possible deep vein thrombosis: refer before treatment",
    )  # fmt: skip
    return today


@pytest.mark.parametrize("device", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_therapist_lands_on_today_and_sees_the_urgent_flag_on_the_row(
    chromium, live_server, therapist, day, device
):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)
    name = "desktop" if device is DESKTOP else "phone"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(**device)
        sign_in(page, live_server.url, therapist.username)
        panel = page.locator("#panel-therapist-today")
        expect(panel).to_contain_text("14:15 EST")
        expect(panel.locator(".flag-urgent")).to_have_count(1)
        page.get_by_role("link", name="Open Today (flags, intake, last visit, notes)").click()
        expect(page.get_by_role("heading", name="Today")).to_be_visible()
        rows = page.locator("tr.today-row")
        expect(rows).to_have_count(2)
        expect(rows.nth(0).locator(".today-time")).to_have_text("09:00")
        urgent = rows.nth(1)
        expect(urgent.locator(".today-time")).to_have_text("14:15")  # clinic time, not 19:15 UTC
        expect(urgent).to_have_class("today-row today-urgent")
        badge = urgent.locator(".flag-badge.flag-urgent")
        expect(badge).to_be_visible()
        expect(urgent).to_contain_text("Possible deep vein thrombosis: refer before treatment")
        expect(rows.nth(0).locator(".flag-badge")).to_have_count(0)
        expect(page.get_by_role("alert")).to_contain_text("14:15 Maya Singh")
        expect(urgent.get_by_role("link", name="Start note")).to_be_visible()
        if device is PHONE:
            box = urgent.get_by_role("link", name="Start note").bounding_box()
            assert box["height"] >= 44  # a tap target
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= device["viewport"]["width"], width
        page.screenshot(path=SHOTS / f"desk-today-{name}.png", full_page=True)
        browser.close()


@pytest.mark.parametrize("device", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_owner_edits_reminder_lead_times_in_a_form(chromium, live_server, owner, clinic, practitioner, device):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)
    name = "desktop" if device is DESKTOP else "phone"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(**device)
        sign_in(page, live_server.url, owner.username)
        page.goto(live_server.url + "/admin/clinic/reminderpolicy/add/")
        page.locator("#id_clinic").select_option(label=clinic.name)
        page.get_by_label("Reminder 1: hours before").fill("800")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator(".field-lead_1_hours .errorlist")).to_contain_text(
            "Ensure this value is less than or equal to 720."
        )
        page.get_by_label("Reminder 1: hours before").fill("24")
        page.get_by_label("Reminder 2: hours before").fill("3")
        page.get_by_role("button", name="Preview").click()
        expect(page.get_by_text("Preview only: nothing was saved.")).to_be_visible()
        preview = page.locator("#message-preview")
        expect(preview).to_contain_text("Email reminder 24 h before")
        expect(preview).to_contain_text("SMS reminder 3 h before")
        first = preview.locator(".message-preview").first
        expect(first).to_contain_text("This is a reminder of your appointment with Theo Therapist at Riverside.")
        expect(first).to_contain_text("When:  Tuesday")
        page.screenshot(path=SHOTS / f"desk-reminders-{name}.png", full_page=True)
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator(".messagelist")).to_contain_text("was added successfully")
        browser.close()
    assert ReminderPolicy.objects.get(clinic=clinic).lead_times == [
        {"hours": 24, "channel": "email"},
        {"hours": 3, "channel": "sms"},
    ]


def test_each_role_lands_on_its_panels_and_the_lists_fit_1366(
    chromium, live_server, owner, receptionist, therapist, day
):
    from playwright.sync_api import expect, sync_playwright

    ivy = Appointment.objects.get(patient__given_name="Ivy")
    tomorrow = day + dt.timedelta(days=1)
    AppointmentFactory(
        clinic=ivy.clinic, patient=ivy.patient, practitioner=ivy.practitioner, service=ivy.service,
        start=dt.datetime.combine(tomorrow, dt.time(10, 0), tzinfo=ivy.clinic.tz),
    )  # fmt: skip
    expect.set_options(timeout=20_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        desk = browser.new_page(**DESKTOP)
        sign_in(desk, live_server.url, receptionist.username)
        today = desk.locator("#panel-desk-today")
        expect(today.get_by_role("heading")).to_have_text("Today's appointments (2)")
        expect(today.locator(".landing-when").first).to_have_text("09:00 EST")
        expect(today.locator(".flag-urgent")).to_have_count(1)
        expect(today).not_to_contain_text("deep vein")  # severity only at the desk
        # Upcoming only (today's may have passed when the test runs): tomorrow's is listed.
        expect(desk.locator("#panel-unconfirmed")).to_contain_text(f"{tomorrow:%a %d %b} 10:00 EST Ivy Chen")
        expect(desk.locator("#panel-failed-messages")).to_have_count(0)
        desk.screenshot(path=SHOTS / "desk-landing-receptionist.png", full_page=True)
        for url in ("/admin/treatment_sessions/appointment/", "/admin/patients/patient/"):
            desk.goto(live_server.url + url)
            results = desk.locator(".results")
            overflow = results.evaluate("node => node.scrollWidth - node.clientWidth")
            assert overflow <= 0, (url, overflow)  # no column runs off the list
            if "appointment" in url:
                when = desk.locator(".field-when").filter(has_text="9 a.m.–10 a.m.")  # start–end, clinic time
                expect(when).to_have_count(1)
            desk.screenshot(path=SHOTS / f"desk-list-{url.split('/')[-2]}.png")

        boss = browser.new_page(**DESKTOP)
        sign_in(boss, live_server.url, owner.username)
        expect(boss.locator("#panel-urgent-flags")).to_contain_text("Maya Singh: Possible deep vein thrombosis")
        expect(boss.locator("#panel-failed-messages")).to_contain_text("No failed messages.")
        expect(boss.locator("#panel-break-glass")).to_contain_text("No emergency access waiting for review.")
        expect(boss.locator("#panel-desk-today")).to_have_count(0)
        boss.screenshot(path=SHOTS / "desk-landing-owner.png", full_page=True)
        browser.close()
