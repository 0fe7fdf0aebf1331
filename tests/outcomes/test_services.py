"""Links through the outbox, responses (complete and incomplete), the baseline after intake, the
repeat rhythm (run twice), finishing a course and the MCID report."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from clinic.messaging.outbox import message_still_applies
from clinic.models import Message, MessageKind, MessageStatus
from intake.services import intake_submit
from outcomes.models import MeasureText, OutcomeCourse, OutcomeLink, OutcomeResponse, ResponseStatus
from outcomes.selectors import mcid_report, patient_series
from outcomes.services import (
    LinkUnavailableError,
    outcome_course_finish,
    outcome_link_create,
    outcome_record,
    outcome_repeats_send,
    outcome_submit,
)
from tests.factories import AppointmentFactory, PatientFactory, PractitionerFactory, clean_intake_answers, intake_link
from tests.outcomes.conftest import lefs

pytestmark = pytest.mark.django_db


def test_a_sent_link_is_an_outbox_message_that_stops_once_answered(patient):
    link = outcome_link_create(patient=patient, measure="lefs", send=True)
    message = Message.objects.get(kind=MessageKind.OUTCOME_LINK, about_id=link.pk)
    assert message.status == MessageStatus.SCHEDULED
    assert message.context["link"] == link.url
    assert link.url.startswith("http")
    assert f"/outcomes/{link.token}/" in link.url
    outcome_submit(link=link, answers=lefs(40))
    message.refresh_from_db()
    assert message.status == MessageStatus.CANCELLED
    assert message.reason == "measure answered"


def test_a_complete_response_is_scored_and_an_incomplete_one_is_stored_without_a_score(patient):
    done = outcome_submit(link=outcome_link_create(patient=patient, measure="lefs"), answers=lefs(47))
    assert (done.status, done.score) == (ResponseStatus.COMPLETE, Decimal("47.00"))
    partial = outcome_submit(
        link=outcome_link_create(patient=patient, measure="lefs"), answers=lefs(47) | {"q3": None, "q9": None}
    )
    assert (partial.status, partial.score, partial.missing) == (ResponseStatus.INCOMPLETE, None, ["q3", "q9"])
    assert partial.answers["q3"] is None
    assert partial.answers["q1"] == 4
    assert partial.course == done.course  # both in the patient's one open LEFS course


def test_out_of_range_answers_store_nothing_and_keep_the_link_open(patient):
    link = outcome_link_create(patient=patient, measure="nprs")
    with pytest.raises(ValidationError) as refused:
        outcome_submit(link=link, answers={"pain": 12})
    assert "pain" in refused.value.message_dict
    link.refresh_from_db()
    assert link.status == "open"
    assert not OutcomeResponse.objects.exists()


def test_a_link_answers_once(patient):
    link = outcome_link_create(patient=patient, measure="nprs")
    outcome_submit(link=link, answers={"pain": 4})
    with pytest.raises(LinkUnavailableError):
        outcome_submit(link=link, answers={"pain": 3})
    assert OutcomeResponse.objects.count() == 1


def test_a_licensed_measure_needs_the_clinics_wording_before_a_link(clinic, patient):
    with pytest.raises(ValidationError) as refused:
        outcome_link_create(patient=patient, measure="odi")
    assert "licensed" in str(refused.value)
    items = {f"s{n}": {"text": f"Section {n}", "options": [f"statement {v}" for v in range(6)]} for n in range(1, 11)}
    MeasureText.objects.create(clinic=clinic, measure="odi", items=items, licence_note="Mapi licence 2026-01")
    assert outcome_link_create(patient=patient, measure="odi").measure == "odi"


def test_the_baseline_comes_with_intake(clinic, patient, rhythm, django_capture_on_commit_callbacks):
    practitioner = PractitionerFactory(clinic=clinic)
    appointment = AppointmentFactory(clinic=clinic, patient=patient, practitioner=practitioner)
    with django_capture_on_commit_callbacks(execute=True):
        intake_submit(link=intake_link(patient, appointment=appointment), answers=clean_intake_answers())
    links = OutcomeLink.objects.filter(patient=patient).order_by("measure")
    assert [link.measure for link in links] == ["lefs", "nprs"]
    assert all(link.course.practitioner == practitioner for link in links)
    assert Message.objects.filter(kind=MessageKind.OUTCOME_LINK, patient=patient).count() == 2


def test_without_baseline_measures_an_intake_sends_no_measure(clinic, patient, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        intake_submit(link=intake_link(patient), answers=clean_intake_answers())
    assert not OutcomeLink.objects.exists()


def test_repeats_follow_the_weeks_rhythm_and_a_second_run_sends_nothing(patient, rhythm):
    start = timezone.now() - dt.timedelta(weeks=4)
    with time_machine.travel(start, tick=False):
        first = outcome_link_create(patient=patient, measure="lefs")
        outcome_submit(link=first, answers=lefs(40))
    assert outcome_repeats_send(now=start + dt.timedelta(weeks=2)) == 0  # not yet three weeks
    assert outcome_repeats_send() == 1
    assert outcome_repeats_send() == 0  # the open link waits for the patient
    repeat = OutcomeLink.objects.filter(course=first.course).order_by("-created_at").first()
    assert repeat.reason == "repeat"
    assert repeat.status == "open"
    assert Message.objects.filter(kind=MessageKind.OUTCOME_LINK, about_id=repeat.pk).count() == 1


def test_repeats_by_visits_count_attended_appointments_since_the_last_link(clinic, patient, rhythm):
    rhythm.repeat_every_weeks, rhythm.repeat_every_visits = None, 2
    rhythm.save()
    with time_machine.travel(timezone.now() - dt.timedelta(days=10), tick=False):
        first = outcome_link_create(patient=patient, measure="nprs")
        outcome_submit(link=first, answers={"pain": 6})
    AppointmentFactory(clinic=clinic, patient=patient, status="completed", start=timezone.now() - dt.timedelta(days=5))
    assert outcome_repeats_send() == 0
    AppointmentFactory(clinic=clinic, patient=patient, status="cancelled", start=timezone.now() - dt.timedelta(days=3))
    assert outcome_repeats_send() == 0  # a cancelled visit does not count
    AppointmentFactory(clinic=clinic, patient=patient, status="arrived", start=timezone.now() - dt.timedelta(hours=2))
    assert outcome_repeats_send() == 1
    assert outcome_repeats_send() == 0


def test_a_finished_course_gets_no_repeats_and_its_open_link_is_revoked(patient, rhythm, owner):
    link = outcome_link_create(patient=patient, measure="nprs", now=timezone.now() - dt.timedelta(weeks=5))
    course = outcome_course_finish(course=link.course, by=owner)
    link.refresh_from_db()
    assert course.finished_at is not None
    assert link.status == "revoked"
    assert outcome_repeats_send() == 0


def test_the_validity_check_stops_a_message_for_a_revoked_link(patient, owner):
    link = outcome_link_create(patient=patient, measure="nprs", send=True)
    message = Message.objects.get(kind=MessageKind.OUTCOME_LINK, about_id=link.pk)
    outcome_course_finish(course=link.course, by=owner)
    assert message_still_applies(message) != ""


def test_staff_can_type_in_a_paper_form_but_not_for_a_future_date(patient, owner):
    today = timezone.localdate(timezone.now(), patient.clinic.tz)
    response = outcome_record(patient=patient, measure="nprs", answers={"pain": 5}, recorded_on=today, by=owner)
    assert response.entered_by == owner
    assert response.score == 5
    with pytest.raises(ValidationError) as refused:
        outcome_record(
            patient=patient, measure="nprs", answers={"pain": 5}, recorded_on=today + dt.timedelta(days=1), by=owner
        )
    assert "recorded_on" in refused.value.message_dict


def test_the_series_and_the_mcid_report(clinic, patient, owner):
    ava, ben = (
        PractitionerFactory(clinic=clinic, display_name="Ava"),
        PractitionerFactory(clinic=clinic, display_name="Ben"),
    )
    today = timezone.localdate(timezone.now(), clinic.tz)
    for total, days in ((38, 40), (49, 20), (61, 0)):
        outcome_record(
            patient=patient, measure="lefs", answers=lefs(total), recorded_on=today - dt.timedelta(days=days), by=owner
        )
    series = patient_series(patient_id=patient.pk)
    assert [s.measure.code for s in series] == ["lefs"]
    assert [r.score for r in series[0].scored] == [38, 49, 61]
    assert series[0].reached_mcid
    course = OutcomeCourse.objects.get(patient=patient)
    course.practitioner = ava
    course.save()
    outcome_course_finish(course=course, by=owner)
    others = [PatientFactory(clinic=clinic) for _ in range(2)]
    for other, (first, last) in zip(others, ((40, 45), (30, 50)), strict=True):
        for score, days in ((first, 30), (last, 1)):
            outcome_record(
                patient=other,
                measure="lefs",
                answers=lefs(score),
                recorded_on=today - dt.timedelta(days=days),
                by=owner,
            )
        other_course = OutcomeCourse.objects.get(patient=other)
        other_course.practitioner = ben
        other_course.save()
        outcome_course_finish(course=other_course, by=owner)
    outcome_record(
        patient=PatientFactory(clinic=clinic), measure="lefs", answers=lefs(20), recorded_on=today, by=owner
    )  # open
    rows = {row.practitioner: row for row in mcid_report(clinic_ids=[clinic.pk])}
    assert (rows["Ava"].finished, rows["Ava"].reached, rows["Ava"].share) == (1, 1, 100)
    assert (rows["Ben"].finished, rows["Ben"].reached, rows["Ben"].share) == (2, 1, 50)  # +5 is under 9; +20 is over


def test_the_day_a_patient_answers_is_the_clinics_day_across_a_dst_change(clinic, patient):
    clinic.time_zone = "America/Toronto"
    clinic.save()
    # 02:30 UTC on Sunday 8 March 2026 is 21:30 on Saturday 7 March in Toronto (before the change).
    with time_machine.travel(dt.datetime(2026, 3, 8, 2, 30, tzinfo=dt.UTC), tick=False):
        saturday = outcome_submit(link=outcome_link_create(patient=patient, measure="nprs"), answers={"pain": 5})
    # 07:30 UTC the same Sunday is 03:30 EDT, after the clocks went forward.
    with time_machine.travel(dt.datetime(2026, 3, 8, 7, 30, tzinfo=dt.UTC), tick=False):
        sunday = outcome_submit(link=outcome_link_create(patient=patient, measure="nprs"), answers={"pain": 4})
    assert saturday.recorded_on == dt.date(2026, 3, 7)
    assert sunday.recorded_on == dt.date(2026, 3, 8)
