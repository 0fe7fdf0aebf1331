"""Intake API: links (create, revoke, resend), submissions for clinical roles only, flags, FHIR."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone
from fhir.resources.R4B.questionnaire import Questionnaire as FhirQuestionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse as FhirQuestionnaireResponse

from clinic.models import AuditAction, AuditEvent, Message, MessageKind
from clinic.services import api_key_create
from intake.models import IntakeLink, IntakeSettings
from intake.services import intake_submit
from tests.factories import AppointmentFactory, PatientFactory, clean_intake_answers, default_questionnaire, intake_link
from tests.fhir_validation import assert_valid_fhir

pytestmark = pytest.mark.django_db


@pytest.fixture
def submission(clinic, practitioner):
    patient = PatientFactory(clinic=clinic)
    # The shared therapist is the patient's usual practitioner (see clinic.security.access).
    AppointmentFactory(clinic=clinic, patient=patient, practitioner=practitioner)
    answers = clean_intake_answers(
        calf_swollen=True, calf_swollen_side="right", onset_date="2025-01-15", sitting_hours=7.5,
        pain_radiates=True, sciatica_side="right", sciatica_symptoms=["tingling"],
    )  # fmt: skip
    return intake_submit(link=intake_link(patient), answers=answers)


def test_front_desk_creates_a_link_and_gets_its_url_and_expiry(receptionist_api, clinic):
    default_questionnaire()
    patient = PatientFactory(clinic=clinic)
    with time_machine.travel(dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC), tick=False):
        response = receptionist_api.post("/api/v1/intake-links/", {"patient": patient.pk})
    assert response.status_code == 201
    body = response.json()
    link = IntakeLink.objects.get(pk=body["id"])
    assert body["url"] == link.url
    assert "/intake/" in body["url"]
    assert body["status"] == "open"
    assert link.expires_at == dt.datetime(2026, 3, 9, 10, 0, tzinfo=dt.UTC)
    assert body["expires_at"] == "2026-03-09T10:00:00Z"


def test_the_clinic_sets_how_long_links_last(receptionist_api, clinic):
    default_questionnaire()
    IntakeSettings.objects.create(clinic=clinic, link_valid_days=2)
    with time_machine.travel(dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC), tick=False):
        response = receptionist_api.post("/api/v1/intake-links/", {"patient": PatientFactory(clinic=clinic).pk})
    assert response.json()["expires_at"] == "2026-03-04T10:00:00Z"


def test_a_link_can_be_tied_to_the_patients_appointment_only(receptionist_api, clinic):
    default_questionnaire()
    appointment = AppointmentFactory(clinic=clinic)
    other = PatientFactory(clinic=clinic)
    ok = receptionist_api.post(
        "/api/v1/intake-links/", {"patient": appointment.patient_id, "appointment": appointment.pk}
    )
    assert ok.status_code == 201
    refused = receptionist_api.post("/api/v1/intake-links/", {"patient": other.pk, "appointment": appointment.pk})
    assert refused.status_code == 400
    assert "appointment" in refused.json()["errors"]


def test_a_link_for_another_clinics_patient_is_a_field_error(receptionist_api, other_clinic):
    default_questionnaire()
    response = receptionist_api.post("/api/v1/intake-links/", {"patient": PatientFactory(clinic=other_clinic).pk})
    assert response.status_code == 400
    assert "patient" in response.json()["errors"]
    assert IntakeLink.objects.count() == 0


def test_sending_needs_a_reachable_patient_and_writes_nothing_without_one(receptionist_api, clinic):
    default_questionnaire()
    patient = PatientFactory(clinic=clinic, email="", email_consent=False)
    response = receptionist_api.post("/api/v1/intake-links/", {"patient": patient.pk, "send": True})
    assert response.status_code == 400
    assert IntakeLink.objects.count() == 0
    assert Message.objects.count() == 0


def test_resend_queues_the_same_link_again(receptionist_api, clinic):
    link = intake_link(PatientFactory(clinic=clinic, email="maya@example.com"))
    response = receptionist_api.post(f"/api/v1/intake-links/{link.pk}/resend/")
    assert response.status_code == 200
    assert response.json()["send_count"] == 1
    message = Message.objects.get(kind=MessageKind.INTAKE_LINK, about_id=link.pk)
    assert (message.channel, message.context["link"]) == ("email", link.url)


def test_revoke_then_resend_is_refused(receptionist_api, clinic):
    link = intake_link(PatientFactory(clinic=clinic))
    revoked = receptionist_api.post(f"/api/v1/intake-links/{link.pk}/revoke/")
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert receptionist_api.post(f"/api/v1/intake-links/{link.pk}/resend/").status_code == 400
    assert not Message.objects.filter(kind=MessageKind.INTAKE_LINK).exists()


def test_a_receptionist_cannot_read_submissions(receptionist_api, submission):
    assert receptionist_api.get("/api/v1/intake-submissions/").status_code == 403
    assert receptionist_api.get(f"/api/v1/intake-submissions/{submission.pk}/").status_code == 403


def test_a_therapist_reads_a_submission_as_a_summary_with_its_flags_and_the_read_is_audited(therapist_api, submission):
    response = therapist_api.get(f"/api/v1/intake-submissions/{submission.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["questionnaire"]["version"] == 1
    assert body["summary"][0]["title"] == "Where it hurts"
    assert {f["rule_code"] for f in body["flags"]} == {"dvt_suspected"}
    event = AuditEvent.objects.get(action=AuditAction.VIEW, object_id=str(submission.pk))
    assert event.patient_id == submission.patient_id
    assert event.via == "api"


def test_the_submission_list_does_not_grow_queries_with_its_rows(
    therapist_api, clinic, practitioner, django_assert_max_num_queries
):
    for day, patient in enumerate(PatientFactory.create_batch(5, clinic=clinic), start=1):
        start = timezone.now().replace(microsecond=0) + dt.timedelta(days=day)
        AppointmentFactory(clinic=clinic, patient=patient, practitioner=practitioner, start=start)
        intake_submit(link=intake_link(patient), answers=clean_intake_answers(anticoagulants=True))
    # membership; one page of submissions with questionnaire and patient; their flags; then the audit
    # row (savepoint, chain lock with the previous hash in one round trip, insert, release) - whatever
    # the page size.
    with django_assert_max_num_queries(7):
        response = therapist_api.get("/api/v1/intake-submissions/")
    assert len(response.json()["results"]) == 5


def test_another_clinic_cannot_see_the_submission(other_api, submission):
    assert other_api.get(f"/api/v1/intake-submissions/{submission.pk}/").status_code == 404


def test_flags_appear_on_the_patient_until_acknowledged_by_a_clinician(
    receptionist_api, therapist_api, therapist, submission
):
    patient = receptionist_api.get(f"/api/v1/patients/{submission.patient_id}/").json()
    assert [(f["severity"], f["title"], f["rule_code"], f["acknowledged"]) for f in patient["active_flags"]] == [
        ("urgent", "Urgent flag: review before treatment", "", False)
    ]
    patient = therapist_api.get(f"/api/v1/patients/{submission.patient_id}/").json()
    assert [(f["rule_code"], f["region"], f["side"], f["acknowledged"]) for f in patient["active_flags"]] == [
        ("dvt_suspected", "leg", "right", False)
    ]
    flag_id = patient["active_flags"][0]["id"]
    assert receptionist_api.post(f"/api/v1/patient-flags/{flag_id}/acknowledge/").status_code == 403
    acknowledged = therapist_api.post(f"/api/v1/patient-flags/{flag_id}/acknowledge/").json()
    assert acknowledged["acknowledged_by"] == therapist.username
    assert acknowledged["acknowledged_at"]
    listed = therapist_api.get(f"/api/v1/patient-flags/?patient={submission.patient_id}&acknowledged=false").json()
    assert listed["results"] == []


def test_a_clinician_clears_a_flag_with_a_reason_and_it_leaves_the_patient(
    therapist_api, receptionist_api, therapist, submission
):
    flag = submission.flags.get()
    url = f"/api/v1/patient-flags/{flag.pk}/clear/"
    assert receptionist_api.post(url, {"reason": "GP ruled out DVT"}).status_code == 403
    assert therapist_api.post(url, {"reason": "  "}).status_code == 400
    cleared = therapist_api.post(url, {"reason": "GP ruled out DVT (ultrasound 3 March)"})
    assert cleared.status_code == 200
    assert cleared.json()["cleared_by"] == therapist.username
    assert cleared.json()["acknowledged_by"] == therapist.username
    assert therapist_api.post(url, {"reason": "again"}).status_code == 400
    assert therapist_api.get(f"/api/v1/patients/{submission.patient_id}/").json()["active_flags"] == []


def test_an_api_key_cannot_acknowledge_a_flag(api, clinic, submission):
    _, raw = api_key_create(clinic=clinic, name="ehr", scopes=["intake:read", "intake:write"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    flag = submission.flags.get()
    assert api.get("/api/v1/patient-flags/").status_code == 200
    assert api.post(f"/api/v1/patient-flags/{flag.pk}/acknowledge/").status_code == 403


def test_fhir_exports_are_valid_r4_questionnaire_and_questionnaire_response(therapist_api, submission):
    questionnaire = therapist_api.get(f"/api/v1/intake-questionnaires/{submission.questionnaire_id}/fhir/").json()
    assert_valid_fhir(questionnaire, "Questionnaire")
    parsed = FhirQuestionnaire.model_validate(questionnaire)
    assert parsed.version == "1"
    sciatica = next(i for i in parsed.item if i.linkId == "sciatica")
    assert sciatica.item[0].enableWhen[0].question == "pain_radiates"
    response = therapist_api.get(f"/api/v1/intake-submissions/{submission.pk}/fhir/")
    assert response.status_code == 200
    assert_valid_fhir(response.json(), "QuestionnaireResponse")
    qr = FhirQuestionnaireResponse.model_validate(response.json())
    assert qr.questionnaire.endswith("/fhir/Questionnaire/leg-knee-back-pain|1")
    assert qr.subject.reference == f"Patient/{submission.patient_id}"
    pain = next(i for i in qr.item if i.linkId == "pain")
    region = next(i for i in pain.item if i.linkId == "pain_regions")
    assert [a.answer[0].valueCoding.code for a in region.item] == ["knee", "left"]
    assert AuditEvent.objects.filter(action=AuditAction.EXPORT, via="fhir").count() == 1
