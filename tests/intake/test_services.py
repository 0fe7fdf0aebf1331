"""Submitting, versioning, flags and the intake_submitted event, through the services."""

from __future__ import annotations

import copy

import pytest
from django.core.exceptions import ValidationError

from intake.catalogs import load_questionnaires, read_definition
from intake.models import IntakeLinkStatus, IntakeSubmission, PatientFlag, Questionnaire
from intake.services import (
    LinkUnavailableError,
    flag_acknowledge,
    intake_draft_save,
    intake_link_revoke,
    intake_submit,
    questionnaire_current,
    questionnaire_publish,
)
from intake.signals import intake_submitted
from tests.factories import PatientFactory, clean_intake_answers, default_questionnaire, intake_link

pytestmark = pytest.mark.django_db


def test_loading_the_catalog_twice_publishes_one_version(clinic):
    default_questionnaire()
    assert load_questionnaires() == 0
    assert Questionnaire.objects.filter(code="leg-knee-back-pain").count() == 1
    assert questionnaire_current(clinic=clinic).version == 1


def test_a_valid_submission_is_stored_with_its_version_and_raises_its_flags(clinic):
    link = intake_link(PatientFactory(clinic=clinic))
    submission = intake_submit(link=link, answers=clean_intake_answers(anticoagulants=True, fever=True))
    link.refresh_from_db()
    assert link.status == IntakeLinkStatus.SUBMITTED
    assert submission.questionnaire == link.questionnaire
    assert submission.signature_name == "Maya Singh"
    assert sorted(submission.patient.flags.values_list("rule_code", flat=True)) == [
        "anticoagulant_or_bleeding", "systemic_red_flags",
    ]  # fmt: skip


def test_a_refused_submission_writes_nothing(clinic):
    link = intake_link(PatientFactory(clinic=clinic))
    with pytest.raises(ValidationError) as caught:
        intake_submit(link=link, answers=clean_intake_answers(fever=True, pain_now=12))
    assert "pain_now" in caught.value.message_dict
    link.refresh_from_db()
    assert link.status == IntakeLinkStatus.OPEN
    assert IntakeSubmission.objects.count() == 0
    assert PatientFlag.objects.count() == 0


def test_a_link_accepts_one_submission(clinic):
    link = intake_link(PatientFactory(clinic=clinic))
    intake_submit(link=link, answers=clean_intake_answers())
    with pytest.raises(LinkUnavailableError):
        intake_submit(link=link, answers=clean_intake_answers())
    assert IntakeSubmission.objects.count() == 1


def test_publishing_a_new_version_leaves_open_links_and_past_submissions_on_their_version(clinic):
    patient = PatientFactory(clinic=clinic)
    old_link = intake_link(patient)
    done = intake_submit(link=intake_link(patient), answers=clean_intake_answers())
    changed = copy.deepcopy(read_definition("leg_knee_back_pain.yaml"))
    goals = changed["sections"][-2]["questions"][0]
    assert goals["code"] == "goals"
    goals["max_length"] = 10  # v2 is stricter than v1
    v2, created = questionnaire_publish(definition=changed)
    assert created
    assert v2.version == 2
    assert questionnaire_current(clinic=clinic) == v2
    # The old link still validates against v1: a 35-character goal is fine there.
    submission = intake_submit(link=old_link, answers=clean_intake_answers())
    assert submission.questionnaire.version == 1
    done.refresh_from_db()
    assert done.questionnaire.version == 1
    assert Questionnaire.objects.get(code="leg-knee-back-pain", version=1).definition == read_definition(
        "leg_knee_back_pain.yaml"
    )
    new_link = intake_link(patient, questionnaire=v2)
    with pytest.raises(ValidationError) as caught:
        intake_submit(link=new_link, answers=clean_intake_answers())
    assert "goals" in caught.value.message_dict


def test_draft_keeps_answers_and_a_changed_answer_drops_the_questions_it_switched_off(clinic):
    link = intake_link(PatientFactory(clinic=clinic))
    pain = {
        "pain_regions": [{"region": "calf", "side": "left"}],
        "pain_now": 3,
        "pain_worst": 5,
        "pain_radiates": "yes",
        "numbness_tingling": "no",
    }
    intake_draft_save(link=link, section_code="pain", raw=pain, complete=True)
    intake_draft_save(link=link, section_code="sciatica", raw={"sciatica_side": "left"}, complete=True)
    assert link.draft_answers["sciatica_side"] == "left"
    intake_draft_save(link=link, section_code="pain", raw={**pain, "pain_radiates": "no"}, complete=True)
    link.refresh_from_db()
    assert link.draft_answers["pain_radiates"] is False
    assert "sciatica_side" not in link.draft_answers


def test_a_malformed_answer_is_not_saved_even_when_saving_for_later(clinic):
    link = intake_link(PatientFactory(clinic=clinic))
    with pytest.raises(ValidationError):
        intake_draft_save(link=link, section_code="pain", raw={"pain_now": "eleven"}, complete=False)
    link.refresh_from_db()
    assert link.draft_answers == {}


def test_a_flag_still_in_force_is_not_raised_twice(clinic):
    patient = PatientFactory(clinic=clinic)
    intake_submit(link=intake_link(patient), answers=clean_intake_answers(conditions=["pregnancy"]))
    intake_submit(link=intake_link(patient), answers=clean_intake_answers(conditions=["pregnancy"]))
    assert patient.flags.filter(rule_code="pregnancy").count() == 1


def test_acknowledging_keeps_the_first_clinician_and_time(clinic, therapist, owner):
    patient = PatientFactory(clinic=clinic)
    intake_submit(link=intake_link(patient), answers=clean_intake_answers(conditions=["implanted_device"]))
    flag = patient.flags.get()
    flag_acknowledge(flag=flag, by=therapist)
    first_time = flag.acknowledged_at
    flag_acknowledge(flag=flag, by=owner)
    flag.refresh_from_db()
    assert flag.acknowledged_by == therapist
    assert flag.acknowledged_at == first_time
    assert PatientFlag.objects.unacknowledged().count() == 0
    assert PatientFlag.objects.active().count() == 1


def test_intake_submitted_is_sent_after_commit(clinic, django_capture_on_commit_callbacks):
    received = []

    def receiver(sender, submission_id, **kwargs):
        received.append(submission_id)

    intake_submitted.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            submission = intake_submit(link=intake_link(PatientFactory(clinic=clinic)), answers=clean_intake_answers())
    finally:
        intake_submitted.disconnect(receiver)
    assert received == [submission.pk]


def test_a_revoked_link_cannot_be_submitted_and_a_submitted_one_cannot_be_revoked(clinic, receptionist):
    revoked = intake_link_revoke(link=intake_link(PatientFactory(clinic=clinic)), by=receptionist)
    with pytest.raises(LinkUnavailableError):
        intake_submit(link=revoked, answers=clean_intake_answers())
    used = intake_link(PatientFactory(clinic=clinic))
    intake_submit(link=used, answers=clean_intake_answers())
    with pytest.raises(ValidationError):
        intake_link_revoke(link=used, by=receptionist)
