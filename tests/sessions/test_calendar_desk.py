"""What the QA walk of the front-desk calendar found, each pinned: a flag badge that is always
whole, a default service that someone shown offers and a plain "no free times", no move to the
visit's own start, cancelled visits still findable, flag badges in the booking search, and the
patient's confirmation on the block and the appointment page."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.test import Client

from intake.models import FlagSeverity
from sessions.models import Appointment, AppointmentStatus, CancelledBy, ConfirmedVia
from sessions.services import appointment_book, appointment_cancel, appointment_confirm
from tests.factories import PatientFactory, PatientFlagFactory, ServiceFactory
from tests.sessions.conftest import local

pytestmark = pytest.mark.django_db

CALENDAR = "/admin/calendar/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _text(response) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def _book(setup, start, patient=None, practitioner=None, service=None):
    return appointment_book(
        clinic=setup.clinic,
        patient=patient or setup.patient,
        practitioner=practitioner or setup.practitioner,
        service=service or setup.massage,
        start=start,
    )


def _block(html: str, start: str) -> str:
    """The <li> of the block that starts at `start` ("09:00")."""
    found = re.search(rf'<li class="cal-block cal-appt[^"]*"[^>]*>\s*(?:(?!</li>).)*?{start}–.*?</li>', html, re.S)
    assert found, f"no block at {start}"
    return found.group(0)


def test_a_short_block_shows_the_badge_whole_and_keeps_the_rest_in_its_accessible_name(setup, receptionist):
    short = ServiceFactory(
        clinic=setup.clinic, name="Release", duration_minutes=30, buffer_minutes=0, requires_room=False
    )
    setup.practitioner.services.add(short)
    setup.patient.given_name, setup.patient.family_name = "Maya", "Singh"
    setup.patient.save()
    PatientFlagFactory(clinic=setup.clinic, patient=setup.patient, severity=FlagSeverity.URGENT, rule_code="dvt")
    _book(setup, local(2027, 3, 2, 9, 0), service=short)
    _book(setup, local(2027, 3, 2, 10, 0), patient=setup.patient2)  # 60 minutes: room for every line
    client = _client(receptionist)
    week = client.get(CALENDAR, {"date": "2027-03-02", "view": "week", "practitioner": setup.practitioner.pk})
    block = _block(week.content.decode(), "09:00")
    # Time on the first line, then the badge before the name; the detail lines do not fit a
    # 36 px block in a narrow week column, so they are hidden whole, not cut.
    assert re.search(
        r'cal-time">09:00&ndash;09:30</span>\s*<span class="cal-who"><span class="cal-flag flag-urgent"', block
    )
    assert block.count("cal-more") == 2
    assert 'aria-label="09:00–09:30 Maya Singh, Urgent flag, Release, Booked, No intake"' in block
    long = _block(week.content.decode(), "10:00")
    assert "cal-more" not in long
    # A day column has the time, badge and name on one line: a 30-minute block keeps the
    # service line, the status line goes to the title and aria-label.
    day = _block(client.get(CALENDAR, {"date": "2027-03-02"}).content.decode(), "09:00")
    assert day.count("cal-more") == 1
    assert re.search(r'class="cal-line cal-meta cal-more"><span class="cal-status">Booked</span>', day)


def test_the_default_service_is_one_the_practitioners_shown_offer(setup, receptionist):
    # First by name, offered by no one: it used to be the default, with nothing to show.
    nobody = ServiceFactory(clinic=setup.clinic, name="Active Release Technique")
    client = _client(receptionist)
    page = client.get(CALENDAR, {"date": "2027-03-02"})
    html = page.content.decode()
    assert f'<option value="{nobody.pk}" selected>' not in html
    assert f'<option value="{setup.acupuncture.pk}" selected>' in html
    assert "Dashed times are free starts for Acupuncture" in _text(page)
    # Una offers massage only: her week defaults to it.
    una = client.get(CALENDAR, {"date": "2027-03-02", "view": "week", "practitioner": setup.other.pk})
    assert f'<option value="{setup.massage.pk}" selected>' in una.content.decode()
    assert "/admin/calendar/book/" in una.content.decode()


def test_no_free_times_is_said_plainly(setup, receptionist):
    nobody = ServiceFactory(clinic=setup.clinic, name="Active Release Technique")
    client = _client(receptionist)
    text = _text(client.get(CALENDAR, {"date": "2027-03-02", "service": nobody.pk}))
    assert "No free times for Active Release Technique on Tuesday 2 March; try another day or service." in text
    assert "Dashed times" not in text
    week = _text(client.get(CALENDAR, {"date": "2027-03-02", "view": "week", "service": nobody.pk}))
    assert "No free times for Active Release Technique in the week of Monday 1 March;" in week


def test_the_current_start_is_not_offered_and_a_move_to_it_is_refused(setup, receptionist):
    appointment = _book(setup, local(2027, 3, 2, 10, 0))
    client = _client(receptionist)
    url = f"/admin/calendar/appointment/{appointment.pk}/"
    html = client.get(url).content.decode()
    assert f'value="{setup.practitioner.pk}|{setup.room1.pk}|2027-03-02T10:30:00-05:00"' in html
    at_ten = {v.split("|")[0] for v in re.findall(r'value="([^"]*\|2027-03-02T10:00:00-05:00)"', html)}
    # Another practitioner at the same time is a real move, and stays on offer; Theo's is not.
    assert at_ten == {str(setup.other.pk)}
    for room in (setup.room1.pk, ""):
        response = client.post(url, {"slot": f"{setup.practitioner.pk}|{room}|2027-03-02T10:00:00-05:00"})
        assert response.status_code == 400
        assert "The appointment is already at Tuesday 2 March 2027, 10:00–11:00 (America/Toronto) with Theo" in (
            _text(response)
        )
        assert "nothing was changed" in _text(response)
    appointment.refresh_from_db()
    assert appointment.sequence == 0
    assert list(appointment.changes.values_list("kind", flat=True)) == ["booked"]


def test_cancelled_visits_are_listed_under_their_day_with_links(setup, receptionist):
    gone = _book(setup, local(2027, 3, 2, 10, 0))
    appointment_cancel(appointment=gone, by=receptionist, party=CancelledBy.PATIENT, reason="Flu")
    kept = _book(setup, local(2027, 3, 2, 10, 0), patient=setup.patient2)  # the time was rebooked
    client = _client(receptionist)
    for query in ({"date": "2027-03-02"}, {"date": "2027-03-02", "view": "week"}, {"date": "2027-03-02", "by": "room"}):
        page = client.get(CALENDAR, query)
        html, text = page.content.decode(), _text(page)
        assert "Cancelled or no-show (1)" in text, query
        assert f'<a href="/admin/calendar/appointment/{gone.pk}/">10:00–11:00 {setup.patient}</a>' in unescape(html)
        assert "Cancelled by the patient" in text
        assert f'href="/admin/calendar/appointment/{kept.pk}/"' in html
    # It holds no time: Una's 10:00 is free and Theo's block is the rebooked one only.
    page = client.get(CALENDAR, {"date": "2027-03-02", "service": setup.massage.pk})
    assert _text(page).count(f"10:00–11:00 {setup.patient2}") == 1


def test_the_booking_search_shows_each_patients_flag_badge(setup, receptionist):
    flagged = PatientFactory(clinic=setup.clinic, given_name="Maya", family_name="Zed")
    PatientFactory(clinic=setup.clinic, given_name="Mark", family_name="Zed")
    PatientFlagFactory(clinic=setup.clinic, patient=flagged, severity=FlagSeverity.CAUTION, rule_code="anticoag")
    PatientFlagFactory(clinic=setup.clinic, patient=flagged, severity=FlagSeverity.URGENT, rule_code="dvt")
    query = {
        "clinic": setup.clinic.slug,
        "practitioner": setup.practitioner.pk,
        "service": setup.massage.pk,
        "start": "2027-03-02T09:00:00-05:00",
    }
    client = _client(receptionist)
    text = _text(client.get("/admin/calendar/book/", {**query, "q": "Zed"}))
    assert "Maya Zed ⚠︎ Urgent flag" in text
    assert "Mark Zed ⚠" not in text
    assert "Dvt" not in text  # severity only
    assert "anticoag" not in text.lower()
    # Once chosen (the form comes back with an error), the badge is still by her name.
    refused = client.post("/admin/calendar/book/", {**query, "patient": flagged.pk, "notes": "x" * 501})
    assert refused.status_code == 400
    assert "Maya Zed ⚠︎ Urgent flag" in _text(refused)
    assert Appointment.objects.count() == 0


def test_a_confirmed_visit_says_how_on_its_block_and_page(setup, receptionist):
    appointment = _book(setup, local(2027, 3, 2, 10, 0))
    appointment_confirm(appointment=appointment, via=ConfirmedVia.SMS_REPLY)
    other = _book(setup, local(2027, 3, 2, 13, 0))
    appointment_confirm(appointment=other, by=receptionist)
    client = _client(receptionist)
    text = _text(client.get(CALENDAR, {"date": "2027-03-02"}))
    assert "Confirmed (SMS reply) · No intake" in text
    assert "Confirmed (staff) · No intake" in text
    page = _text(client.get(f"/admin/calendar/appointment/{appointment.pk}/"))
    assert "Status Confirmed (SMS reply)" in page
    assert re.search(r"Confirmation Confirmed by the patient \(SMS reply\), \d\d \w\w\w \d\d:\d\d", page)
    assert Appointment.objects.get(pk=appointment.pk).status == AppointmentStatus.CONFIRMED
