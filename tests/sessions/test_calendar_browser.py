"""The receptionist's journey in the booking calendar, in headless Chromium at a laptop's and a
phone's size: book from a free slot, reschedule to another free slot, cancel with a reason.
Asserts what the receptionist reads: clinic times with the zone named and the urgent-flag badge.

Drives Debian's Chromium through Playwright's Python package; never `playwright install`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import zoneinfo

import pytest
from django.utils import timezone

from intake.models import FlagSeverity
from sessions.models import Appointment, AppointmentStatus, ConfirmedVia
from sessions.services import appointment_book
from sessions.services.confirmation import appointment_patient_confirm
from tests.factories import (
    LocationFactory,
    PatientFactory,
    PatientFlagFactory,
    PractitionerFactory,
    RoomFactory,
    ServiceFactory,
    WorkingHoursFactory,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run",
]  # fmt: skip
TORONTO = zoneinfo.ZoneInfo("America/Toronto")

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _clinic_setup(clinic, practitioner):
    location = LocationFactory(clinic=clinic, name="Main street")
    massage = ServiceFactory(clinic=clinic, name="Remedial massage", duration_minutes=60, buffer_minutes=15)
    room = RoomFactory(clinic=clinic, location=location, name="Room 1")
    room.services.add(massage)
    other = PractitionerFactory(clinic=clinic, display_name="Una Other")
    for profile in (practitioner, other):
        profile.services.add(massage)
        for weekday in range(7):
            WorkingHoursFactory(
                clinic=clinic, practitioner=profile, location=location, weekday=weekday,
                start_time=dt.time(9), end_time=dt.time(17),
            )  # fmt: skip
    return massage, room


@pytest.mark.parametrize(
    ("width", "height"), [(1366, 900), (390, 844)], ids=["laptop", "phone"]
)  # fmt: skip
def test_the_receptionist_books_moves_and_cancels_from_the_calendar(
    live_server, clinic, receptionist, practitioner, width, height, tmp_path
):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"The browser test needs Chromium at {CHROMIUM} (Debian packages 'chromium', 'chromium-driver').")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)
    massage, _room = _clinic_setup(clinic, practitioner)
    maya = PatientFactory(clinic=clinic, given_name="Maya", family_name="Singh")
    PatientFlagFactory(clinic=clinic, patient=maya, severity=FlagSeverity.URGENT, rule_code="dvt_suspected")
    # A week ahead in the clinic's zone, so every time shown is still bookable.
    day = timezone.now().astimezone(TORONTO).date() + dt.timedelta(days=7)
    busy = PatientFactory(clinic=clinic, given_name="Ben", family_name="Busy")
    held = appointment_book(
        clinic=clinic, patient=busy, practitioner=practitioner, service=massage,
        start=dt.datetime.combine(day, dt.time(9), tzinfo=TORONTO),
    )  # fmt: skip
    appointment_patient_confirm(appointment=held, via=ConfirmedVia.SMS_REPLY)  # Ben replied YES
    # A 30-minute visit of a flagged patient: the shortest block, where the badge used to be cut.
    release = ServiceFactory(
        clinic=clinic, name="Trigger point release", duration_minutes=30, buffer_minutes=0, requires_room=False
    )
    practitioner.services.add(release)
    zoe = PatientFactory(clinic=clinic, given_name="Zoe", family_name="Taylor")
    PatientFlagFactory(clinic=clinic, patient=zoe, severity=FlagSeverity.URGENT, rule_code="dvt_suspected")
    appointment_book(
        clinic=clinic, patient=zoe, practitioner=practitioner, service=release,
        start=dt.datetime.combine(day, dt.time(16), tzinfo=TORONTO),
    )  # fmt: skip
    long_day = f"{day:%A} {day.day} {day:%B %Y}"
    calendar = f"{live_server.url}/admin/calendar/?date={day:%Y-%m-%d}&service={massage.pk}"
    shot = tmp_path / f"cal-{width}"  # screenshots at each step, for a person to look at

    # No ORM calls inside this block: Playwright's sync API keeps an event loop in this thread.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        phone = width < 500
        desk = browser.new_context(viewport={"width": width, "height": height}, is_mobile=phone, has_touch=phone)
        page = desk.new_page()
        page.goto(live_server.url + "/admin/login/?next=/admin/calendar/")
        page.get_by_label("Username").fill(receptionist.username)
        page.get_by_label("Password").fill("a-long-test-password")
        page.get_by_role("button", name="Log in").click()
        page.goto(calendar)
        expect(page.get_by_role("heading", name=f"Riverside: {long_day}")).to_be_visible()
        expect(page.get_by_text("Times in America/Toronto.")).to_be_visible()
        ben = page.get_by_role("link", name="09:00–10:00 Ben Busy")
        expect(ben).to_be_visible()
        expect(ben.get_by_text("Confirmed (SMS reply)")).to_be_visible()
        expect(ben).to_have_attribute("aria-label", re.compile(r"Confirmed \(SMS reply\)"))
        page.screenshot(path=f"{shot}-1-day.png", full_page=True)
        # The 30-minute block: the badge is whole and readable inside it, in the day and the week.
        for view in ("", "&view=week"):
            page.goto(calendar + view)
            zoe_block = page.get_by_role("link", name="16:00–16:30 Zoe Taylor, Urgent flag")
            badge = zoe_block.locator(".cal-flag")
            expect(badge).to_be_visible()
            expect(badge).to_contain_text("Urgent")
            if not phone:
                inner, outer = badge.bounding_box(), zoe_block.bounding_box()
                assert inner["height"] >= 12, inner
                assert inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5, (inner, outer)
                assert inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5, (inner, outer)
                # Only whole lines: none of the block's lines shown runs past its bottom.
                for line in zoe_block.locator(".cal-line").all():
                    box = line.bounding_box()
                    if box is not None and line.is_visible():
                        assert box["y"] + box["height"] <= outer["y"] + outer["height"] + 0.5, (box, outer)
            page.screenshot(path=f"{shot}-1c-short{view[6:]}.png", full_page=True)
        page.goto(calendar)

        # Taken meanwhile: this desk opens 12:15 for Maya, another tab books Ben there first.
        page.get_by_role("link", name="Book Remedial massage with Theo Therapist at 12:15").click()
        page.get_by_label("Find the patient").fill("Singh")
        page.get_by_role("button", name="Search").click()
        page.get_by_label("Maya Singh").check()
        other_tab = desk.new_page()
        other_tab.goto(page.url.replace("q=Singh", "q=Busy"))
        other_tab.get_by_label("Ben Busy").check()
        other_tab.get_by_role("button", name="Book Remedial massage").click()
        expect(other_tab.locator(".messagelist")).to_contain_text("Booked Ben Busy")
        other_tab.close()
        page.get_by_role("button", name="Book Remedial massage").click()
        clash = page.get_by_role("alert")
        expect(clash).to_contain_text("This time was taken meanwhile.")
        expect(clash).to_contain_text(
            re.compile(
                rf"The (practitioner|room) is already booked from 12:15 to 13:30 on {long_day} "
                r"\(America/Toronto\), by appointment \d+\."
            )
        )
        expect(clash.get_by_role("link", name=re.compile(r"Open appointment \d+"))).to_be_visible()
        page.screenshot(path=f"{shot}-1b-clash.png", full_page=True)
        page.goto(calendar)

        # Book: the 10:00 start is taken by Ben's buffer, so the first free one after it is 10:15.
        expect(page.get_by_role("link", name="Book Remedial massage with Theo Therapist at 10:00")).to_have_count(0)
        free = page.get_by_role("link", name="Book Remedial massage with Theo Therapist at 11:00")
        free.focus()  # from the keyboard
        page.keyboard.press("Enter")
        expect(page.locator(".cal-when")).to_have_text(f"{long_day}, 11:00–12:00 (America/Toronto)")
        page.get_by_label("Find the patient").fill("Singh")
        page.get_by_role("button", name="Search").click()
        page.get_by_label("Maya Singh").check()
        expect(page.locator(".cal-patients .cal-flag")).to_have_text("⚠︎ Urgent flag")
        page.screenshot(path=f"{shot}-2-book.png", full_page=True)
        page.get_by_role("button", name="Book Remedial massage").click()
        expect(page.locator(".messagelist")).to_contain_text(
            f"Booked Maya Singh with Theo Therapist for {long_day}, 11:00–12:00 (America/Toronto)."
        )
        block = page.get_by_role("link", name="11:00–12:00 Maya Singh")
        expect(block).to_be_visible()
        expect(block.locator(".cal-flag")).to_have_text("⚠︎ Urgent flag")
        expect(block.locator(".cal-flag")).to_be_visible()
        page.screenshot(path=f"{shot}-3-booked.png", full_page=True)

        # Reschedule: open the appointment and choose another free start.
        block.click()
        expect(page.locator(".cal-when")).to_have_text(f"{long_day}, 11:00–12:00 (America/Toronto)")
        expect(page.locator(".cal-flag")).to_have_text("⚠︎ Urgent flag")
        # Its own start is no move: not offered.
        expect(page.get_by_role("button", name="Move to 11:00 with Theo Therapist")).to_have_count(0)
        next_day = day + dt.timedelta(days=1)
        for name in ("Back to the day", f"{next_day:%a} {next_day.day} {next_day:%b} →"):
            box = page.get_by_role("link", name=name).bounding_box()
            assert box["height"] >= 44 or not phone, (name, box)
        assert page.get_by_role("link", name="Back to the day").bounding_box()["height"] >= 44
        page.get_by_role("button", name="Move to 14:00 with Una Other").click()
        expect(page.locator(".messagelist")).to_contain_text(
            f"to {long_day}, 14:00–15:00 (America/Toronto) with Una Other."
        )
        moved = page.get_by_role("link", name="14:00–15:00 Maya Singh")
        expect(moved).to_be_visible()
        page.screenshot(path=f"{shot}-4-moved.png", full_page=True)

        # Cancel: who cancelled and why.
        moved.click()
        page.get_by_role("button", name="Cancel the appointment").click()
        expect(page.get_by_text("Say who cancelled.")).to_be_visible()
        expect(page.get_by_text("Give the reason.")).to_be_visible()
        page.get_by_label("The patient cancelled").check()
        page.get_by_label("Reason").fill("Flu, will call back")
        page.screenshot(path=f"{shot}-5-cancel.png", full_page=True)
        page.get_by_role("button", name="Cancel the appointment").click()
        expect(page.locator(".messagelist")).to_contain_text(
            f"Cancelled: Maya Singh, {long_day}, 14:00–15:00 (America/Toronto). Reason: Flu, will call back"
        )
        expect(page.locator(".cal-appt").get_by_role("link", name="14:00–15:00 Maya Singh")).to_have_count(0)
        # Still findable: listed, struck through, under her day's column.
        gone = page.locator(".cal-gone").filter(has_text="Cancelled or no-show (1)")
        expect(gone.get_by_role("link", name="14:00–15:00 Maya Singh")).to_be_visible()
        expect(gone).to_contain_text("Cancelled by the patient")
        # Her time is free again.
        expect(page.get_by_role("link", name="Book Remedial massage with Una Other at 14:00")).to_be_visible()
        page.screenshot(path=f"{shot}-6-cancelled.png", full_page=True)
        browser.close()

    appointment = Appointment.objects.get(patient=maya)
    assert appointment.status == AppointmentStatus.CANCELLED
    assert appointment.cancelled_by_party == "patient"
    assert appointment.cancellation_reason == "Flu, will call back"
    assert appointment.start == dt.datetime.combine(day, dt.time(14), tzinfo=TORONTO)
    assert appointment.practitioner.display_name == "Una Other"
    assert appointment.booked_by == receptionist
    taken = Appointment.objects.get(patient=busy, start=dt.datetime.combine(day, dt.time(12, 15), tzinfo=TORONTO))
    assert taken.booked_by == receptionist
    assert list(appointment.changes.values_list("kind", flat=True).order_by("at", "pk")) == [
        "booked", "rescheduled", "status",
    ]  # fmt: skip
