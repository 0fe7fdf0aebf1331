"""Staff pages on the demo clinic: the LEFS trend of the demo patient with three scores on his
patient page and his note page, hidden without a care relationship, and the owners' MCID report."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction

from clinic.models import AuditAction, AuditEvent, User
from clinic.security.roles import Role
from outcomes.charts import trend_svg
from outcomes.models import OutcomeResponse
from outcomes.selectors import patient_series
from patients.models import Patient
from sessions.models import TreatmentSession
from tests.factories import staff

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    """One demo seed for the module, rolled back after the last test."""
    with django_db_blocker.unblock(), transaction.atomic():
        call_command("seed_demo", stdout=StringIO())
        yield Patient.objects.get(clinic__slug="demo", given_name="Noah", family_name="Tremblay")
        transaction.set_rollback(True)


def signed_in(client, username: str):
    client.force_login(User.objects.get(username=username))
    return client


def lefs_chart(body: str) -> str:
    found = re.search(r'<svg[^>]*data-measure="lefs".*?</svg>', body, re.S)
    assert found, "no LEFS chart on the page"
    return found.group(0)


def test_the_demo_patient_has_three_lefs_scores_and_they_improve_past_the_mcid(demo):
    scores = list(OutcomeResponse.objects.filter(patient=demo, measure="lefs").order_by("recorded_on"))
    assert [r.score for r in scores] == [38, 49, 61]
    series = next(s for s in patient_series(patient_id=demo.pk) if s.measure.code == "lefs")
    assert series.change == 23
    assert series.reached_mcid


def test_the_trend_chart_draws_each_score_the_baseline_and_the_mcid_line(demo):
    series = next(s for s in patient_series(patient_id=demo.pk) if s.measure.code == "lefs")
    svg = str(trend_svg(series))
    assert svg.count('class="score"') == 3
    assert 'class="baseline"' in svg
    assert 'class="mcid"' in svg
    assert "MCID (9)" in svg
    assert 'aria-label="LEFS trend: 38, 49, 61"' in svg
    assert "<polyline" in svg


def test_the_patient_page_shows_the_trend_to_his_therapist_and_audits_it(client, demo):
    response = signed_in(client, "chen").get(f"/admin/patients/patient/{demo.pk}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    chart = lefs_chart(body)
    assert chart.count('class="score"') == 3
    assert "3 scores; baseline 38" in body
    assert "MCID 9: reached" in body
    assert AuditEvent.objects.filter(
        action=AuditAction.VIEW, patient_id=demo.pk, reason="Outcome measure trends"
    ).exists()


def test_the_note_page_shows_the_trend(client, demo):
    note = TreatmentSession.objects.filter(patient=demo).order_by("-started_at").first()
    response = signed_in(client, "chen").get(f"/admin/treatment_sessions/treatmentsession/{note.pk}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    assert lefs_chart(body).count('class="score"') == 3
    assert 'id="pain-trend"' in body  # the note page's own panels are still there


def test_a_therapist_without_a_care_relationship_and_the_front_desk_see_no_scores(client, demo):
    newcomer = staff(demo.clinic, Role.THERAPIST, "new-therapist")  # no visit or note with Noah
    client.force_login(newcomer)
    body = client.get(f"/admin/patients/patient/{demo.pk}/change/").content.decode()
    assert 'data-measure="lefs"' not in body
    assert "emergency access" in body
    body = signed_in(client, "frontdesk").get(f"/admin/patients/patient/{demo.pk}/change/").content.decode()
    assert 'data-measure="lefs"' not in body
    assert 'id="outcome-trends"' not in body


def test_owners_see_the_share_of_finished_courses_that_reached_the_mcid(client, demo):
    response = signed_in(client, "owner").get("/admin/outcomes/outcomecourse/report/")
    assert response.status_code == 200
    body = response.content.decode()
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(\d+)</td><td>(\d+)</td><td>(.*?)</td>", body)
    by_who = {(who, measure): (finished, reached, share) for _, who, measure, finished, reached, share in rows}
    assert by_who[("Ava Thompson, RMT (ART)", "LEFS (9)")] == ("1", "1", "100%")  # 44 -> 57
    assert by_who[("Ben Okafor, RMT", "NPRS (2)")] == ("1", "0", "0%")  # 7 -> 6
    assert signed_in(client, "ava").get("/admin/outcomes/outcomecourse/report/").status_code == 403
