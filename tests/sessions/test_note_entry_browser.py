"""A therapist writes a note in headless Chromium, at a 1366x900 desktop and a 390x844 phone:
finds the structure, the region and the point by their common names and a spaced code, sees
the protocol list narrowed to the structure, answers three contraindication warnings in one
save, signs, and is refused an edit with exactly one message. The page never grows wider
than the screen (before: 2,203 px at 1366 with three entries).

Drives Debian's Chromium through Playwright's Python package; never `playwright install`.
"""

from __future__ import annotations

import os
from urllib.parse import urlencode

import pytest

from sessions.models import AcupunctureEntry, ArtEntry, MassageEntry, NoteStatus, TreatmentSession
from tests.factories import AppointmentFactory, PatientFactory, PatientFlagFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run",
]  # fmt: skip
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REASONS = {
    "art_entries-0": "INR 2.4 this morning; ART kept to two light passes.",
    "massage_entries-0": "Cleared by her GP last week; deep strokes kept off the shin.",
    "acupuncture_entries-0": "Fine 0.16 mm needle, pressure held two minutes after removal.",
}


def autocomplete(page, row: str, field: str, typed: str, choice: str) -> None:
    """Choose in an admin autocomplete (select2) by typing, as a person does."""
    page.locator(f"#{row} .field-{field} .select2-selection").click()
    search = page.locator(".select2-container--open .select2-search__field")
    search.fill(typed)
    page.locator(".select2-results__option", has_text=choice).first.click()


def shot(page, name: str) -> None:
    """A full-page screenshot into $SCREENSHOT_DIR when set, to look at while working."""
    if folder := os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=os.path.join(folder, f"note-entry-{name}.png"), full_page=True)


def page_width(page) -> int:
    return page.evaluate("() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_therapist_answers_three_warnings_in_one_save_signs_and_is_refused_an_edit(
    live_server, clinic, therapist, practitioner, catalogs, viewport
):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"The browser test needs Chromium at {CHROMIUM}: install the Debian packages 'chromium'.")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)
    name = "desktop" if viewport is DESKTOP else "phone"
    patient = PatientFactory(clinic=clinic, given_name="Maya", family_name="Singh")
    appointment = AppointmentFactory(clinic=clinic, patient=patient, practitioner=practitioner)
    # One caution flag with no region: every deep or needling entry of the note meets it.
    PatientFlagFactory(
        clinic=clinic, patient=patient, rule_code="anticoagulant_or_bleeding", severity="caution",
        title="Takes warfarin",
    )  # fmt: skip
    query = urlencode({"patient": patient.pk, "appointment": appointment.pk})
    add_url = f"{live_server.url}/admin/treatment_sessions/treatmentsession/add/?{query}"

    # No ORM calls inside this block: Playwright's sync API keeps an event loop in this thread.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        phone = viewport is PHONE
        page = browser.new_page(viewport=viewport, is_mobile=phone, has_touch=phone)
        page.goto(f"{live_server.url}/admin/login/?" + urlencode({"next": add_url.removeprefix(live_server.url)}))
        page.get_by_label("Username").fill(therapist.username)
        page.get_by_label("Password").fill("a-long-test-password")
        page.get_by_role("button", name="Log in").click()
        expect(page.locator("#patient-flags")).to_contain_text("Takes warfarin")

        page.get_by_label("Subjective").fill("Calf tight after a half marathon; on warfarin.")
        page.get_by_label("Objective").fill("Tender left gastrocnemius, ankle dorsiflexion 10 degrees.")
        page.get_by_label("Assessment").fill("Gastrocnemius adhesions.")
        page.get_by_label("Plan").fill("ART, massage and GB34; home stretches.")

        # ART: the structure by a common word; the protocol list narrows to it.
        page.get_by_role("button", name="Add another ART entry").click()
        autocomplete(page, "art_entries-0", "structure", "calf", "Gastrocnemius")
        protocol = page.locator("#id_art_entries-0-protocol")
        expect(protocol.locator("option:not([hidden])")).to_have_text(["---------", "ART: gastrocnemius"])
        protocol.select_option(label="ART: gastrocnemius")
        page.locator("#id_art_entries-0-side").select_option("left")
        page.locator("#id_art_entries-0-passes").fill("2")

        page.get_by_role("button", name="Add another Massage entry").click()
        autocomplete(page, "massage_entries-0", "region", "calf", "Calf")
        page.locator("#id_massage_entries-0-side").select_option("left")
        page.locator("#id_massage_entries-0-technique").select_option("stripping")
        page.locator("#id_massage_entries-0-pressure").fill("4")
        page.locator("#id_massage_entries-0-minutes").fill("15")

        # The point typed with a space, as therapists write it.
        page.get_by_role("button", name="Add another Acupuncture entry").click()
        autocomplete(page, "acupuncture_entries-0", "point", "GB 34", "GB34 Yanglingquan")
        page.locator("#id_acupuncture_entries-0-side").select_option("left")
        page.locator("#id_acupuncture_entries-0-needles_inserted").fill("1")
        page.locator("#id_acupuncture_entries-0-needles_removed").fill("1")
        page.locator("#id_acupuncture_entries-0-depth_mm").fill("25")
        page.locator("#id_acupuncture_entries-0-retention_minutes").fill("20")
        shot(page, f"{name}-1-entries")
        assert page_width(page) <= viewport["width"], "the entry tables stretch the page"
        page.get_by_role("button", name="Save and continue editing").click()

        # Every warning of the note at once, one reason field each.
        review = page.locator("#safety-review")
        expect(review.get_by_role("alert")).to_contain_text("3 warnings need a reason")
        reasons = review.get_by_label("Reason to go ahead (required)")
        expect(reasons).to_have_count(3)
        expect(review).to_contain_text("Anticoagulants or a bleeding disorder")
        assert page_width(page) <= viewport["width"], "the page with the safety review is wider than the screen"
        shot(page, f"{name}-2-review")
        for prefix, reason in REASONS.items():
            page.locator(f"#id_{prefix}-override-anticoagulant_or_bleeding").fill(reason)
        page.get_by_role("button", name="Save and continue editing").click()

        expect(page.locator(".messagelist")).to_contain_text("was added successfully")
        expect(review.locator(".safety-summary")).to_have_text("Every warning has a reason.")
        assert page_width(page) <= viewport["width"], "the saved note is wider than the screen"
        page.get_by_role("button", name="Sign and lock note").click()
        expect(page.locator(".messagelist")).to_have_text("Note signed and locked.")

        # An edit of the signed note: refused, said once.
        page.get_by_role("button", name="Save", exact=True).click()
        messages = page.locator(".messagelist li")
        expect(messages).to_have_count(1)
        expect(messages).to_have_text(
            "This note is signed and locked: nothing was changed. Add an addendum to correct it."
        )
        assert page_width(page) <= viewport["width"], "the signed note is wider than the screen"
        shot(page, f"{name}-3-refused")
        browser.close()

    session = TreatmentSession.objects.get(patient=patient)
    assert session.status == NoteStatus.SIGNED
    assert session.appointment_id == appointment.pk
    stored = {
        "art_entries-0": ArtEntry.objects.get(session=session),
        "massage_entries-0": MassageEntry.objects.get(session=session),
        "acupuncture_entries-0": AcupunctureEntry.objects.get(session=session),
    }
    for prefix, entry in stored.items():
        assert (entry.override_reason, entry.overridden_rules) == (REASONS[prefix], ["anticoagulant_or_bleeding"])
    assert stored["art_entries-0"].protocol.code == "gastrocnemius"
    assert stored["acupuncture_entries-0"].point.code == "GB34"
