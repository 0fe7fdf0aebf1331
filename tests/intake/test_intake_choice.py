"""A clinic chooses which intake its links send, leg or upper body or both (admin and API); new
versions leave old submissions on theirs; the upper-body form exports as FHIR."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from clinic.models import Message, MessageKind
from intake.models import IntakeChoice, IntakeLink, IntakeSettings, Questionnaire
from intake.services import intake_link_create, intake_links_create, intake_submit, questionnaire_publish
from tests.factories import PatientFactory, clean_intake_answers, default_questionnaire, questionnaire_definition
from tests.fhir_validation import assert_valid_fhir

pytestmark = pytest.mark.django_db

LEG, UPPER = IntakeChoice.LEG.value, IntakeChoice.UPPER.value


@pytest.fixture(autouse=True)
def _published():
    default_questionnaire()  # publishes every file of intake/catalog_data/


def codes(links) -> list[str]:
    return [link.questionnaire.code for link in links]


def test_without_a_setting_a_link_sends_the_leg_intake(clinic):
    assert codes(intake_links_create(patient=PatientFactory(clinic=clinic))) == [LEG]
    assert intake_link_create(patient=PatientFactory(clinic=clinic)).questionnaire.code == LEG


def test_a_clinic_set_to_the_upper_body_intake_sends_it(clinic):
    IntakeSettings.objects.create(clinic=clinic, intakes=IntakeChoice.UPPER)
    assert codes(intake_links_create(patient=PatientFactory(clinic=clinic))) == [UPPER]
    assert intake_link_create(patient=PatientFactory(clinic=clinic)).questionnaire.title == (
        "Neck, shoulder, arm and hand pain"
    )


def test_a_clinic_sending_both_gives_two_linked_links_each_sent_in_its_own_message(clinic):
    IntakeSettings.objects.create(clinic=clinic, intakes=IntakeChoice.BOTH)
    patient = PatientFactory(clinic=clinic)
    first, second = intake_links_create(patient=patient, send=True)
    assert codes([first, second]) == [LEG, UPPER]
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.companion, second.companion) == (second, first)
    sent = Message.objects.filter(patient=patient, kind=MessageKind.INTAKE_LINK)
    assert sorted(m.context["link"] for m in sent) == sorted([first.url, second.url])


def test_staff_may_choose_another_intake_than_the_clinics_setting(clinic):
    IntakeSettings.objects.create(clinic=clinic, intakes=IntakeChoice.BOTH)
    assert codes(intake_links_create(patient=PatientFactory(clinic=clinic), intake=UPPER)) == [UPPER]


def test_an_unknown_intake_is_a_field_error_and_makes_no_link(clinic):
    with pytest.raises(ValidationError) as caught:
        intake_links_create(patient=PatientFactory(clinic=clinic), intake="hands-only")
    assert "intake" in caught.value.message_dict
    assert not IntakeLink.objects.exists()


def test_a_patient_who_cannot_be_sent_to_gets_neither_link(clinic):
    IntakeSettings.objects.create(clinic=clinic, intakes=IntakeChoice.BOTH)
    patient = PatientFactory(clinic=clinic, email="", email_consent=False)
    with pytest.raises(ValidationError):
        intake_links_create(patient=patient, send=True)
    assert not IntakeLink.objects.filter(patient=patient).exists()
    assert not Message.objects.filter(patient=patient).exists()


def test_the_api_sends_both_and_names_the_companion(receptionist_api, clinic):
    patient = PatientFactory(clinic=clinic)
    response = receptionist_api.post("/api/v1/intake-links/", {"patient": patient.pk, "intake": "both"})
    assert response.status_code == 201
    body = response.json()
    first = IntakeLink.objects.get(pk=body["id"])
    assert first.questionnaire.code == LEG
    companion = IntakeLink.objects.get(pk=body["companion"])
    assert companion.questionnaire.code == UPPER
    assert receptionist_api.get(f"/api/v1/intake-links/{companion.pk}/").json()["companion"] == first.pk


def test_the_api_follows_the_clinic_setting_and_refuses_an_unknown_intake(receptionist_api, clinic):
    IntakeSettings.objects.create(clinic=clinic, intakes=IntakeChoice.UPPER)
    patient = PatientFactory(clinic=clinic)
    ok = receptionist_api.post("/api/v1/intake-links/", {"patient": patient.pk})
    assert ok.status_code == 201
    assert ok.json()["companion"] is None
    assert IntakeLink.objects.get(pk=ok.json()["id"]).questionnaire.code == UPPER
    refused = receptionist_api.post("/api/v1/intake-links/", {"patient": patient.pk, "intake": "hands-only"})
    assert refused.status_code == 400
    assert "intake" in refused.json()["errors"]
    assert IntakeLink.objects.filter(patient=patient).count() == 1


def test_the_admin_add_page_sends_the_chosen_intake(client, receptionist, clinic):
    patient = PatientFactory(clinic=clinic)
    client.force_login(receptionist)
    form = client.get("/admin/intake/intakelink/add/")
    assert "Neck, shoulder, arm and hand pain" in form.content.decode()
    response = client.post(
        "/admin/intake/intakelink/add/",
        {"clinic": clinic.pk, "patient": patient.pk, "intake": "both", "questionnaire": "", "appointment": ""},
        follow=True,
    )
    assert response.status_code == 200
    assert "Two links were made" in response.content.decode()
    assert sorted(codes(IntakeLink.objects.filter(patient=patient))) == sorted([LEG, UPPER])


def test_the_owner_sets_the_clinics_intake_in_the_admin(client, owner, clinic):
    client.force_login(owner)
    response = client.post(
        "/admin/intake/intakesettings/add/",
        {"clinic": clinic.pk, "intakes": "both", "link_valid_days": 7, "brand_color": "#1f5f8b"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert IntakeSettings.objects.get(clinic=clinic).intakes == IntakeChoice.BOTH


def test_a_submission_on_the_double_barrelled_version_keeps_its_question_after_the_split(clinic):
    # The version before issue 16 asked fever and feeling unwell in one question; publishing the
    # split is a new version, and a submission on the old one still reads as it was asked.
    old = questionnaire_definition("leg_knee_back_pain.yaml")
    old["code"] = "leg-before-split"
    safety = next(s for s in old["sections"] if s["code"] == "safety")
    safety["questions"] = [q for q in safety["questions"] if q["code"] != "unwell"]
    fever = next(q for q in safety["questions"] if q["code"] == "fever")
    fever["text"] = "Have you had a fever or felt generally unwell with this pain?"
    v1 = questionnaire_publish(definition=old)[0]
    answers = clean_intake_answers(fever=True)
    answers.pop("unwell")
    done = intake_submit(link=intake_link_create(patient=PatientFactory(clinic=clinic), questionnaire=v1),
                         answers=answers)  # fmt: skip
    split = questionnaire_definition("leg_knee_back_pain.yaml")
    split["code"] = "leg-before-split"
    v2, created = questionnaire_publish(definition=split)
    assert (created, v2.version) == (True, 2)
    done.refresh_from_db()
    assert done.questionnaire == v1
    rows = {row["code"]: row for block in done.questionnaire.form.summary(done.answers) for row in block["answers"]}
    assert rows["fever"]["question"] == "Have you had a fever or felt generally unwell with this pain?"
    assert "unwell" not in rows


def test_the_upper_body_questionnaire_exports_as_valid_fhir(therapist_api, clinic):
    upper = Questionnaire.objects.filter(code=UPPER, clinic__isnull=True).latest("version")
    body = therapist_api.get(f"/api/v1/intake-questionnaires/{upper.pk}/fhir/").json()
    assert_valid_fhir(body, "Questionnaire")
    assert body["title"] == "Neck, shoulder, arm and hand pain"
