"""A patient confirms a visit from the reminder email's link on a phone, in headless Chromium;
the receptionist's admin appointment list and page then show it confirmed, and by whom.

Debian's Chromium through Playwright's Python package; never `playwright install`.
"""

from __future__ import annotations

import os

import pytest

from intake.services import intake_submit
from sessions import services
from sessions.messages import appointment_reply_token
from sessions.models import Appointment, AppointmentStatus, ConfirmedVia
from tests.factories import (
    LocationFactory,
    PatientFactory,
    RoomFactory,
    ServiceFactory,
    clean_intake_answers,
    intake_link,
)
from tests.intake.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.sessions.conftest import local, weekday_hours

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def visit(time_machine, clinic, practitioner):
    time_machine.move_to(local(2027, 3, 1, 8), tick=True)
    clinic.phone = "+1 416 555 0199"
    clinic.save()
    location = LocationFactory(
        clinic=clinic, name="Main street", address_line1="100 Main St", city="Toronto", region="ON",
        directions="Second floor, the door beside the pharmacy.",
    )  # fmt: skip
    massage = ServiceFactory(clinic=clinic, name="Remedial massage", duration_minutes=60, buffer_minutes=15)
    room = RoomFactory(clinic=clinic, location=location, name="Room 1")
    room.services.add(massage)
    practitioner.services.add(massage)
    weekday_hours(clinic, practitioner, location)
    patient = PatientFactory(clinic=clinic, given_name="Maya", family_name="Singh")
    return services.appointment_book(
        clinic=clinic, patient=patient, practitioner=practitioner, service=massage, start=local(2027, 3, 3, 10)
    )


def test_a_patient_confirms_on_a_phone_and_the_desk_sees_it_confirmed(live_server, visit, receptionist, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"The browser test needs Chromium at {CHROMIUM} (Debian packages 'chromium', 'chromium-driver').")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)
    confirm_url = f"{live_server.url}/visit/{appointment_reply_token(visit)}/"
    change_url = f"/admin/treatment_sessions/appointment/{visit.pk}/change/"
    list_url = f"{live_server.url}/admin/treatment_sessions/appointment/"

    # No ORM calls inside this block: Playwright's sync API keeps an event loop in this thread.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        phone.goto(confirm_url)
        expect(phone.get_by_text("Please confirm that you are coming.")).to_be_visible()
        expect(phone.get_by_text("Wednesday 3 March 2027 at 10:00 AM EST")).to_be_visible()
        expect(phone.get_by_text("100 Main St, Toronto ON")).to_be_visible()
        expect(phone.get_by_text("Second floor, the door beside the pharmacy.")).to_be_visible()
        button = phone.get_by_role("button", name="Confirm my visit")
        box = button.bounding_box()
        assert box["height"] >= 44  # a thumb-sized target ...
        assert box["width"] >= 300  # ... across the phone
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
        phone.screenshot(path=tmp_path / "msg-confirm-phone.png", full_page=True)
        button.click()
        expect(phone.get_by_role("status")).to_have_text("Thank you, your visit is confirmed.")
        expect(phone.get_by_role("button", name="Confirm my visit")).to_have_count(0)
        phone.screenshot(path=tmp_path / "msg-confirmed-phone.png", full_page=True)
        phone.get_by_role("link", name="I can't come").click()
        expect(phone.get_by_role("button", name="Cancel my visit")).to_be_visible()
        phone.screenshot(path=tmp_path / "msg-decline-phone.png", full_page=True)

        desk = browser.new_page(viewport={"width": 1366, "height": 900})
        desk.goto(f"{live_server.url}/admin/login/?next={change_url}")
        desk.get_by_label("Username").fill(receptionist.username)
        desk.get_by_label("Password").fill("a-long-test-password")
        desk.get_by_role("button", name="Log in").click()
        confirmation = desk.locator(".field-confirmation")
        expect(confirmation).to_contain_text("Confirmed by the patient (email link), 01 Mar 08:")
        expect(desk.locator(".field-status_line")).to_contain_text("Confirmed")
        desk.screenshot(path=tmp_path / "msg-desk-change.png", full_page=True)
        desk.goto(list_url)
        row = desk.locator("#result_list tbody tr").filter(has_text="Singh")
        expect(row.locator(".field-confirmation")).to_contain_text("Confirmed by the patient (email link)")
        desk.screenshot(path=tmp_path / "msg-desk-list.png", full_page=True)
        browser.close()

    confirmed = Appointment.objects.get(pk=visit.pk)
    assert (confirmed.status, confirmed.confirmed_via) == (AppointmentStatus.CONFIRMED, ConfirmedVia.EMAIL_LINK)


def test_a_patient_with_an_urgent_answer_reads_what_to_do_on_a_phone(live_server, visit, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)
    link = intake_link(visit.patient, appointment=visit)
    intake_submit(link=link, answers=clean_intake_answers(calf_swollen=True, calf_swollen_side="left"))
    thanks_url = f"{live_server.url}/intake/{link.token}/thanks/"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        phone.goto(thanks_url)
        advice = phone.get_by_role("alert")
        expect(advice.get_by_role("heading", name="Please read this now")).to_be_visible()
        expect(advice).to_contain_text("Please call your doctor today, before your treatment.")
        expect(advice).to_contain_text("call emergency services now")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        phone.screenshot(path=tmp_path / "msg-urgent-thanks.png", full_page=True)
        if os.environ.get("SCREENSHOT_DIR"):
            phone.screenshot(path=os.path.join(os.environ["SCREENSHOT_DIR"], "msg-urgent-thanks.png"), full_page=True)
        browser.close()
