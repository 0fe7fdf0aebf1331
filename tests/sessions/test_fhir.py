"""FHIR R4 clinical resources: Encounter, Procedure, Observation, Questionnaire and
QuestionnaireResponse validate against the fhir.resources R4B models (in their JSON form:
`tests/fhir_validation.py`), hold the invariants the package does not check, and follow the
clinical access rules (roles, scope, break-glass)."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.test import APIClient

from clinic.models import AuditAction, AuditEvent
from clinic.security.access import break_glass_open
from clinic.security.roles import Role
from clinic.services import api_key_create
from intake.services import intake_submit
from sessions.services import entry_add, note_sign
from tests.api.errors import error_detail
from tests.factories import (
    AppointmentFactory,
    PatientFactory,
    PractitionerFactory,
    TreatmentSessionFactory,
    clean_intake_answers,
    intake_link,
    staff,
)
from tests.fhir_validation import assert_valid_fhir
from tests.sessions.conftest import art, home_care, massage, needle

pytestmark = pytest.mark.django_db
RESOURCES = ("Encounter", "Procedure", "Observation", "Questionnaire", "QuestionnaireResponse")
REASON = "Covering for Theo today; patient arrived with acute calf pain."


def search(client, resource, **params) -> list[dict]:
    response = client.get(f"/fhir/R4/{resource}", params)
    assert response.status_code == 200, response.content[:400]
    body = response.json()
    assert_valid_fhir(body, "Bundle")
    assert body["type"] == "searchset"
    entries = body.get("entry", [])
    for entry in entries:
        assert entry["fullUrl"].endswith(f"/fhir/R4/{resource}/{entry['resource']['id']}")
        assert_valid_fhir(entry["resource"], resource)
    return [entry["resource"] for entry in entries]


@pytest.fixture
def record(session, therapist):
    """A signed session with an ART, a massage, a needle and home care; and an intake."""
    entry_add(entry=art(session), actor=therapist)
    entry_add(entry=massage(session), actor=therapist)
    entry_add(entry=needle(session, side="left", inserted=1), actor=therapist)
    entry_add(entry=home_care(session), actor=therapist)
    note_sign(session=session, actor=therapist)
    submission = intake_submit(link=intake_link(session.patient), answers=clean_intake_answers())
    return session, submission


@pytest.fixture
def colleague_api(clinic):
    user = staff(clinic, Role.THERAPIST, "cara-colleague")
    PractitionerFactory(clinic=clinic, user=user)
    client = APIClient()
    client.force_authenticate(user)
    client.user = user
    return client


def test_every_clinical_resource_validates_and_reads_back(owner_api, record):
    session, submission = record
    for resource in RESOURCES:
        found = search(owner_api, resource)
        assert found, resource
        for item in found:
            read = owner_api.get(f"/fhir/R4/{resource}/{item['id']}")
            assert read.status_code == 200, (resource, item["id"], read.content[:300])
            assert read.json() == item
            assert_valid_fhir(read.json(), resource)


def test_a_signed_session_is_a_finished_encounter_with_its_period_and_people(owner_api, record):
    session, _ = record
    [encounter] = search(owner_api, "Encounter")
    assert encounter["id"] == str(session.pk)
    assert encounter["status"] == "finished"
    assert encounter["class"]["code"] == "AMB"
    assert encounter["period"]["start"]  # a finished encounter says when it happened
    assert encounter["subject"]["reference"] == f"Patient/{session.patient_id}"
    assert encounter["participant"][0]["individual"]["reference"] == f"Practitioner/{session.practitioner_id}"
    draft = TreatmentSessionFactory(clinic=session.clinic, patient=session.patient, practitioner=session.practitioner)
    assert owner_api.get(f"/fhir/R4/Encounter/{draft.pk}").json()["status"] == "in-progress"
    assert [e["id"] for e in search(owner_api, "Encounter", status="in-progress")] == [str(draft.pk)]


def test_an_encounter_links_its_appointment(owner_api, clinic, practitioner, patient, catalogs):
    appointment = AppointmentFactory(clinic=clinic, practitioner=practitioner, patient=patient)
    session = TreatmentSessionFactory(
        clinic=clinic, practitioner=practitioner, patient=patient, appointment=appointment
    )
    body = owner_api.get(f"/fhir/R4/Encounter/{session.pk}").json()
    assert body["appointment"] == [{"reference": f"Appointment/{appointment.pk}"}]


def test_each_art_massage_and_needle_entry_is_a_procedure_with_a_body_site(owner_api, record):
    session, _ = record
    procedures = search(owner_api, "Procedure", encounter=session.pk)
    by_kind = {p["code"]["coding"][0]["code"]: p for p in procedures}
    assert set(by_kind) == {"art", "massage", "acupuncture"}  # home care is advice, not a procedure
    for kind, procedure in by_kind.items():
        assert procedure["id"].startswith(f"{kind}-")
        assert procedure["status"] == "completed"
        assert procedure["subject"]["reference"] == f"Patient/{session.patient_id}"
        assert procedure["encounter"]["reference"] == f"Encounter/{session.pk}"
        assert procedure["performedDateTime"]
        [site] = procedure["bodySite"]
        assert site["coding"][0]["code"]
        assert site["text"].endswith("(left)")
    assert by_kind["art"]["bodySite"][0]["coding"][0]["code"] == "gastrocnemius"
    assert by_kind["massage"]["bodySite"][0]["coding"][0]["code"] == "calf"
    assert by_kind["acupuncture"]["bodySite"][0]["coding"][0]["code"] == "ST36"


def test_pain_before_and_after_are_loinc_observations_of_the_encounter(owner_api, record):
    session, _ = record
    observations = {o["id"]: o for o in search(owner_api, "Observation", patient=session.patient_id)}
    assert set(observations) == {f"pain-before-{session.pk}", f"pain-after-{session.pk}"}
    before = observations[f"pain-before-{session.pk}"]
    assert before["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "72514-3",
        "display": "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
    }
    assert before["valueInteger"] == session.pain_before
    assert observations[f"pain-after-{session.pk}"]["valueInteger"] == session.pain_after
    assert before["status"] == "final"
    assert before["encounter"]["reference"] == f"Encounter/{session.pk}"
    for value in observations.values():
        assert 0 <= value["valueInteger"] <= 10
    assert search(owner_api, "Observation", code="http://loinc.org|72514-3")
    assert search(owner_api, "Observation", code="8867-4") == []


def test_a_session_without_pain_scores_has_no_observation(owner_api, session):
    session.pain_before = session.pain_after = None
    session.save()
    assert search(owner_api, "Observation") == []
    assert owner_api.get(f"/fhir/R4/Observation/pain-before-{session.pk}").status_code == 404


def test_unknown_or_malformed_composite_ids_are_404(owner_api, record):
    session, _ = record
    for bad in ("art-999999999", "home_care-1", "12", f"pain-during-{session.pk}", "massage-x"):
        assert owner_api.get(f"/fhir/R4/Procedure/{bad}").status_code == 404
        assert owner_api.get(f"/fhir/R4/Observation/{bad}").status_code == 404


def test_questionnaire_response_answers_the_served_questionnaire(owner_api, record):
    _, submission = record
    [response] = search(owner_api, "QuestionnaireResponse")
    assert response["id"] == str(submission.pk)
    assert response["status"] == "completed"
    assert response["subject"]["reference"] == f"Patient/{submission.patient_id}"
    questionnaire = owner_api.get(f"/fhir/R4/Questionnaire/{submission.questionnaire_id}").json()
    assert response["questionnaire"] == f"{questionnaire['url']}|{questionnaire['version']}"
    link_ids = set()

    def walk(items):
        for item in items:
            link_ids.add(item["linkId"])
            walk(item.get("item", []))

    walk(questionnaire["item"])
    answered = {item["linkId"] for group in response["item"] for item in group["item"]}
    assert answered <= link_ids


def test_clinical_reads_and_searches_are_audited(owner_api, owner, record):
    session, _ = record
    owner_api.get(f"/fhir/R4/Encounter/{session.pk}")
    search(owner_api, "Procedure")
    assert AuditEvent.objects.filter(action=AuditAction.VIEW, actor=owner, via="fhir").count() == 1
    assert AuditEvent.objects.filter(action=AuditAction.LIST, actor=owner, via="fhir").count() == 1


# --- access ----------------------------------------------------------------------------------

CLINICAL = ("Encounter", "Procedure", "Observation", "QuestionnaireResponse")


def test_receptionists_are_denied_clinical_resources_but_see_questionnaires(receptionist_api, record):
    for resource in CLINICAL:
        assert receptionist_api.get(f"/fhir/R4/{resource}").status_code == 404
    assert search(receptionist_api, "Questionnaire")


def test_a_key_needs_the_clinical_scope(api, clinic, record):
    _, key = api_key_create(clinic=clinic, name="Sync", scopes=["patients:read", "intake:read"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    for resource in CLINICAL:
        assert api.get(f"/fhir/R4/{resource}").status_code in {403, 404}
    _, clinical = api_key_create(clinic=clinic, name="EHR", scopes=["clinical:read"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {clinical}")
    for resource in CLINICAL:
        assert search(api, resource), resource


def test_a_colleague_finds_nothing_and_reads_nothing_until_the_glass_is_broken(colleague_api, record):
    session, submission = record
    ids = {
        "Encounter": str(session.pk),
        "Procedure": f"art-{session.art_entries.get().pk}",
        "Observation": f"pain-after-{session.pk}",
        "QuestionnaireResponse": str(submission.pk),
    }
    for resource, resource_id in ids.items():
        assert search(colleague_api, resource) == []
        refused = colleague_api.get(f"/fhir/R4/{resource}/{resource_id}")
        assert refused.status_code == 403
        assert "POST /api/v1/break-glass/" in error_detail(refused)
    assert AuditEvent.objects.filter(action=AuditAction.DENIED, actor=colleague_api.user, via="fhir").count() == 4

    break_glass_open(user=colleague_api.user, patient=session.patient, reason=REASON)
    for resource, resource_id in ids.items():
        assert search(colleague_api, resource)
        assert colleague_api.get(f"/fhir/R4/{resource}/{resource_id}").status_code == 200


def test_another_clinic_sees_none_of_it(other_api, record):
    session, submission = record
    for resource in CLINICAL:
        assert other_api.get(f"/fhir/R4/{resource}").json().get("entry", []) == []
    assert other_api.get(f"/fhir/R4/Encounter/{session.pk}").status_code == 404
    assert other_api.get(f"/fhir/R4/Procedure/art-{session.art_entries.get().pk}").status_code == 404
    assert other_api.get(f"/fhir/R4/QuestionnaireResponse/{submission.pk}").status_code == 404


def test_procedure_search_runs_a_fixed_number_of_queries(
    owner_api, clinic, practitioner, therapist, catalogs, django_assert_max_num_queries
):
    patient = PatientFactory(clinic=clinic)
    for _ in range(3):
        session = TreatmentSessionFactory(clinic=clinic, practitioner=practitioner, patient=patient)
        entry_add(entry=art(session), actor=therapist)
        entry_add(entry=massage(session), actor=therapist)
    # membership; page of sessions; three entry prefetches with their catalog rows; the audit row.
    with django_assert_max_num_queries(14):
        assert len(search(owner_api, "Procedure", _count=100)) == 6


# --- Schedule and Slot ----------------------------------------------------------------------


def test_each_practitioner_has_a_schedule_with_their_services(setup, receptionist_api):
    schedules = {s["id"]: s for s in search(receptionist_api, "Schedule")}
    mine = schedules[str(setup.practitioner.pk)]
    assert mine["actor"][0]["reference"] == f"Practitioner/{setup.practitioner.pk}"
    assert {t["text"] for t in mine["serviceType"]} == {"Remedial massage", "Acupuncture"}


def test_free_slots_are_fhir_slots_of_a_schedule_and_read_back_while_free(setup, receptionist_api):
    params = {"service": setup.massage.pk, "schedule": f"Schedule/{setup.practitioner.pk}",
              "start": ["ge2027-03-01T09:00:00-05:00", "lt2027-03-01T12:00:00-05:00"]}  # fmt: skip
    slots = search(receptionist_api, "Slot", **params)
    assert [s["start"] for s in slots][:2] == ["2027-03-01T09:00:00-05:00", "2027-03-01T09:15:00-05:00"]
    for slot in slots:
        assert slot["status"] == "free"
        assert slot["schedule"]["reference"] == f"Schedule/{setup.practitioner.pk}"
        assert slot["start"] < slot["end"]  # invariant the package does not check
    first = slots[0]
    read = receptionist_api.get(f"/fhir/R4/Slot/{first['id']}").json()
    assert read == first
    assert_valid_fhir(read, "Slot")
    AppointmentFactory(
        clinic=setup.clinic, patient=setup.patient, practitioner=setup.practitioner, service=setup.massage,
        start=dt.datetime.fromisoformat(first["start"]), room=setup.room1, location=setup.location,
    )  # fmt: skip
    assert receptionist_api.get(f"/fhir/R4/Slot/{first['id']}").status_code == 404


def test_slot_search_input_is_checked(setup, receptionist_api, other_api):
    assert receptionist_api.get("/fhir/R4/Slot").status_code == 400  # the service is required
    assert (
        receptionist_api.get("/fhir/R4/Slot", {"service": setup.massage.pk, "start": "2027-03-01"}).status_code == 400
    )
    assert receptionist_api.get("/fhir/R4/Slot", {"service": setup.massage.pk, "bogus": 1}).status_code == 400
    assert other_api.get("/fhir/R4/Slot", {"service": setup.massage.pk}).status_code == 400  # not their service
    assert receptionist_api.get("/fhir/R4/Slot/1-2-3-20270301T1400Z").status_code == 404


@pytest.mark.parametrize("resource", ["Encounter", "Procedure", "Observation", "QuestionnaireResponse", "Schedule"])
def test_searches_run_the_same_queries_at_any_page_size(owner_api, clinic, practitioner, therapist, catalogs, resource):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):
        patient = PatientFactory(clinic=clinic)
        session = TreatmentSessionFactory(clinic=clinic, practitioner=practitioner, patient=patient)
        entry_add(entry=art(session), actor=therapist)
        intake_submit(link=intake_link(patient), answers=clean_intake_answers())
        PractitionerFactory(clinic=clinic)
    counts = []
    for size in (1, 100):
        with CaptureQueriesContext(connection) as queries:
            search(owner_api, resource, _count=size)
        counts.append(len(queries))
    assert counts[0] == counts[1]


# --- no fhir.resources on the request path ----------------------------------------------------

ALL_RESOURCES = (
    "Patient", "Practitioner", "Appointment", "Encounter", "Procedure", "Observation", "Questionnaire",
    "QuestionnaireResponse", "Schedule",
)  # fmt: skip


def test_fhir_requests_build_no_fhir_resources_model(owner_api, record, setup, monkeypatch):
    """Validating with fhir.resources cost more than the rest of a search: the app builds plain
    dicts and the tests validate them. Building a model anywhere under /fhir/R4/ fails here."""
    from fhir_core.fhirabstractmodel import FHIRAbstractModel

    session, _ = record
    AppointmentFactory(clinic=setup.clinic, patient=setup.patient, practitioner=setup.practitioner)

    def refuse(*args, **kwargs):
        raise AssertionError("A fhir.resources model was built while serving FHIR.")

    with monkeypatch.context() as patched:
        patched.setattr(FHIRAbstractModel, "__init__", refuse)
        patched.setattr(FHIRAbstractModel, "model_validate", classmethod(refuse))
        served = {}
        for resource in ALL_RESOURCES:
            search_response = owner_api.get(f"/fhir/R4/{resource}")
            assert search_response.status_code == 200, (resource, search_response.content[:300])
            assert search_response["Content-Type"] == "application/fhir+json"
            found = [entry["resource"] for entry in search_response.json()["entry"]]
            read = owner_api.get(f"/fhir/R4/{resource}/{found[0]['id']}")
            assert read.status_code == 200, (resource, read.content[:300])
            assert read["Content-Type"] == "application/fhir+json"
            served[resource] = [search_response.json(), read.json()]
        slots = owner_api.get("/fhir/R4/Slot", {"service": setup.massage.pk, "start": "ge2027-03-01T09:00:00Z"})
        assert slots.status_code == 200, slots.content[:300]
        slot = owner_api.get(f"/fhir/R4/Slot/{slots.json()['entry'][0]['resource']['id']}")
        assert slot.status_code == 200
        assert slots["Content-Type"] == slot["Content-Type"] == "application/fhir+json"
        served["Slot"] = [slots.json(), slot.json()]
        # The guard works: the patient export still validates at runtime (not a hot path).
        with pytest.raises(AssertionError, match="fhir.resources model was built"):
            owner_api.get(f"/api/v1/patients/{session.patient_id}/export/?format=fhir")
    for bundle, resource in served.values():
        assert_valid_fhir(bundle, "Bundle")
        assert_valid_fhir(resource)
