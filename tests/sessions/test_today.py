"""The therapist's Today page and the landing page per role (issue 14, items 3 and 4)."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from clinic.models import BreakGlassAccess, MessageStatus
from intake.models import FlagSeverity
from sessions.models import AppointmentStatus
from sessions.services import appointment_book
from tests.factories import (
    MessageFactory,
    PatientFactory,
    PatientFlagFactory,
    TreatmentSessionFactory,
    intake_link,
)
from tests.sessions.conftest import NOW

pytestmark = pytest.mark.django_db

TORONTO = ZoneInfo("America/Toronto")
TODAY = "/admin/treatment_sessions/treatmentsession/today/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _book(setup, hour, minute=0, patient=None, **kwargs):
    return appointment_book(
        clinic=setup.clinic,
        patient=patient or PatientFactory(clinic=setup.clinic),
        practitioner=setup.practitioner,
        service=setup.massage,
        start=dt.datetime(2027, 3, 1, hour, minute, tzinfo=TORONTO),
        **kwargs,
    )


@pytest.fixture
def day(setup):
    """Monday 1 March 2027 in Toronto: a 09:00 patient with a caution flag, a started note at
    11:00 for a returning patient, and a 14:00 patient with an urgent suspected-DVT flag."""
    early = _book(setup, 9)
    PatientFlagFactory(
        clinic=setup.clinic, patient=early.patient, severity=FlagSeverity.CAUTION, title="Varicose veins"
    )
    returning = PatientFactory(clinic=setup.clinic, given_name="Rae", family_name="Return")
    TreatmentSessionFactory(
        clinic=setup.clinic, practitioner=setup.practitioner, patient=returning,
        started_at=dt.datetime(2027, 2, 22, 11, 0, tzinfo=TORONTO), assessment="Tight left calf.",
        plan="Stripping, calf stretch daily.",
    )  # fmt: skip
    middle = _book(setup, 11, patient=returning)
    started = TreatmentSessionFactory(
        clinic=setup.clinic, practitioner=setup.practitioner, patient=returning, appointment=middle,
        started_at=middle.start,
    )  # fmt: skip
    urgent_patient = PatientFactory(clinic=setup.clinic, given_name="Maya", family_name="Singh")
    late = _book(setup, 14, patient=urgent_patient)
    PatientFlagFactory(
        clinic=setup.clinic, patient=urgent_patient, rule_code="dvt_suspected", severity=FlagSeverity.URGENT,
        title="Possible deep vein thrombosis: refer before treatment",
    )  # fmt: skip
    intake_link(urgent_patient, appointment=late)
    return {"early": early, "started": started, "late": late, "returning": returning}


def test_today_lists_the_day_by_clinic_time_with_flags_intake_last_visit_and_note_links(setup, day, therapist):
    page = _client(therapist).get(TODAY).content.decode()
    times = re.findall(r'<td class="today-time">(\d\d:\d\d)</td>', page)
    assert times == ["09:00", "11:00", "14:00"]  # sorted by clinic time, not UTC (14:00, 16:00, 19:00)
    rows = page.split('<tr class="today-row')[1:]
    # The urgent flag: summed up above the table, and a badge on its row, which is highlighted.
    alert = page.split('role="alert"')[1].split("</div>")[0]
    assert "14:00 Maya Singh: Possible deep vein thrombosis" in " ".join(alert.split())
    assert rows[2].startswith(" today-urgent")
    assert 'flag-badge flag-urgent">urgent</span> Possible deep vein thrombosis' in rows[2]
    assert 'flag-badge flag-caution">caution</span> Varicose veins' in rows[0]
    assert "flag-urgent" not in rows[0] + rows[1]
    # Intake status, the last visit one click away (a disclosure), start or continue the note.
    assert "Intake sent, not done" in rows[2]
    assert "No intake" in rows[0]
    assert "<summary>Mon 22 Feb</summary>" in rows[1]
    assert "Tight left calf." in rows[1]
    assert "First visit" in rows[0]
    assert f'/treatmentsession/{day["started"].pk}/change/">Continue note</a>' in rows[1]
    assert f"?appointment={day['late'].pk}&amp;patient={day['late'].patient_id}" in rows[2]
    assert ">Start note</a>" in rows[2]


def test_today_audits_the_notes_and_last_visits_it_shows(setup, day, therapist):
    from clinic.models import AuditAction, AuditEvent

    _client(therapist).get(TODAY)
    [listed] = AuditEvent.objects.filter(action=AuditAction.LIST)
    assert listed.extra["ids"] == [day["started"].pk]
    assert len(listed.extra["previous"]) == 1


def test_the_therapist_lands_on_today(setup, day, therapist):
    page = _client(therapist).get("/admin/").content.decode()
    panel = page.split('id="panel-therapist-today"')[1].split("</section>")[0]
    assert "14:00 EST" in panel
    assert "Maya Singh" in panel
    assert 'flag-badge flag-urgent">urgent' in panel
    assert TODAY in panel
    assert 'id="panel-desk-today"' not in page
    assert 'id="panel-urgent-flags"' not in page


def test_the_front_desk_lands_on_the_day_and_unconfirmed_bookings_without_clinical_text(setup, day, receptionist):
    confirmed = _book(setup, 16)
    confirmed.status = AppointmentStatus.CONFIRMED
    confirmed.save()
    page = _client(receptionist).get("/admin/").content.decode()
    today = page.split('id="panel-desk-today"')[1].split("</section>")[0]
    assert re.findall(r'landing-when">(\d\d:\d\d) EST', today) == ["09:00", "11:00", "14:00", "16:00"]
    assert today.count('href="/admin/calendar/"') == 1  # one way to the calendar, no second "Day view"
    assert "Day view" not in today
    assert 'flag-badge flag-urgent">urgent' in today
    assert "deep vein" not in page  # severity only: the flag's text is clinical
    unconfirmed = page.split('id="panel-unconfirmed"')[1].split("</section>")[0]
    assert 'Unconfirmed appointments <span class="landing-count">(3)</span>' in unconfirmed
    assert "Mon 01 Mar 16:00" not in unconfirmed
    assert 'id="panel-therapist-today"' not in page
    assert 'id="panel-failed-messages"' not in page


def test_the_owner_lands_on_urgent_flags_failed_messages_and_break_glass_to_review(setup, day, owner, therapist):
    MessageFactory(appointment=day["early"], status=MessageStatus.FAILED, last_error="SMTP 550 mailbox unavailable")
    BreakGlassAccess.objects.create(
        clinic=setup.clinic, user=therapist, patient=day["returning"], reason="Covering a colleague today",
        opened_at=NOW, expires_at=NOW + dt.timedelta(hours=4),
    )  # fmt: skip
    page = _client(owner).get("/admin/").content.decode()
    flags = page.split('id="panel-urgent-flags"')[1].split("</section>")[0]
    assert "Maya Singh: Possible deep vein thrombosis" in flags
    messages = page.split('id="panel-failed-messages"')[1].split("</section>")[0]
    assert "SMTP 550 mailbox unavailable" in messages
    review = page.split('id="panel-break-glass"')[1].split("</section>")[0]
    assert "Covering a colleague today" in review
    assert 'id="panel-desk-today"' not in page
