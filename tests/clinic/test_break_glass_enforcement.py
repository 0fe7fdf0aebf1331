"""Every read of clinical content goes through the break-glass rule, per path and persona.

The owner reads everything; the usual practitioner (Theo, who treated the patient) reads
their patients; a colleague who never saw the patient gets a 403 that tells them how to
open emergency access (API) or a message and no content (admin), audited as denied, and
reads freely once the glass is broken. Receptionists keep their 404 / no-permission.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from clinic.models import AuditAction, AuditEvent
from clinic.security.access import break_glass_open
from clinic.security.roles import Role
from clinic.services import api_key_create
from intake.services import intake_submit
from tests.factories import (
    PatientFactory,
    PractitionerFactory,
    TreatmentSessionFactory,
    clean_intake_answers,
    intake_link,
    staff,
)

pytestmark = pytest.mark.django_db
REASON = "Covering for Theo today; patient arrived with acute calf pain."
SUBJECTIVE = "Sharp calf pain"


@pytest.fixture
def patient(clinic):
    return PatientFactory(clinic=clinic, given_name="Maya", family_name="Singh")


@pytest.fixture
def record(clinic, practitioner, patient):
    """Theo's note for the patient, and her intake."""
    session = TreatmentSessionFactory(clinic=clinic, patient=patient, practitioner=practitioner)
    # "Run a 10k again" is the marker the pages are searched for: distinctive enough not to
    # turn up by chance in a CSRF token or an id.
    submission = intake_submit(link=intake_link(patient), answers=clean_intake_answers(goals="Run a 10k again."))
    return session, submission


@pytest.fixture
def colleague(clinic):
    user = staff(clinic, Role.THERAPIST, "cara-colleague")
    PractitionerFactory(clinic=clinic, user=user)
    return user


@pytest.fixture
def colleague_api(colleague):
    client = APIClient()
    client.force_authenticate(colleague)
    return client


def denied_events(user) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditAction.DENIED, actor=user))


def detail_urls(session, submission) -> list[str]:
    return [
        f"/api/v1/notes/{session.pk}/",
        f"/api/v1/notes/{session.pk}/export/",
        f"/api/v1/pain-series/{session.patient_id}/",
        f"/api/v1/intake-submissions/{submission.pk}/",
        f"/api/v1/intake-submissions/{submission.pk}/fhir/",
    ]


# --- API: one patient's content -------------------------------------------------------------


@pytest.mark.parametrize("persona", ["owner_api", "therapist_api"])
def test_owner_and_usual_practitioner_read_every_clinical_path(request, record, persona):
    client = request.getfixturevalue(persona)
    for url in detail_urls(*record):
        assert client.get(url).status_code == 200, url


def test_a_colleague_gets_403_telling_them_to_break_the_glass_on_every_path_and_each_is_audited(
    colleague_api, colleague, record, patient
):
    urls = detail_urls(*record)
    for url in urls:
        response = colleague_api.get(url)
        assert response.status_code == 403, url
        body = response.json()
        assert body["status"] == 403
        assert "POST /api/v1/break-glass/" in body["detail"]
        assert SUBJECTIVE not in response.content.decode()
        assert "Run a 10k again" not in response.content.decode()
    events = denied_events(colleague)
    assert len(events) == len(urls)
    assert {e.patient_id for e in events} == {patient.pk}
    assert {e.extra["why"] for e in events} == {"break_glass_required"}
    assert not AuditEvent.objects.filter(action__in=[AuditAction.VIEW, AuditAction.EXPORT], actor=colleague).exists()


def test_a_colleague_reads_every_path_once_the_glass_is_broken(colleague_api, colleague, record, patient):
    created = colleague_api.post("/api/v1/break-glass/", {"patient": patient.pk, "reason": REASON})
    assert created.status_code == 201
    for url in detail_urls(*record):
        assert colleague_api.get(url).status_code == 200, url
    assert not denied_events(colleague)


def test_a_colleague_cannot_write_to_a_note_without_breaking_the_glass(colleague_api, record):
    session, _ = record
    assert colleague_api.patch(f"/api/v1/notes/{session.pk}/", {"plan": "x"}).status_code == 403
    assert colleague_api.post(f"/api/v1/notes/{session.pk}/addenda/", {"text": "x"}).status_code == 403
    session.refresh_from_db()
    assert session.plan != "x"


def test_receptionists_keep_their_404(receptionist_api, record):
    for url in detail_urls(*record):
        assert receptionist_api.get(url).status_code in {403, 404}, url
        assert SUBJECTIVE not in receptionist_api.get(url).content.decode()


def test_an_api_key_with_the_clinical_scope_is_not_a_therapist(api, clinic, record):
    _, key = api_key_create(clinic=clinic, name="EHR sync", scopes=["clinical:read", "intake:read"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    session, submission = record
    assert api.get(f"/api/v1/notes/{session.pk}/").status_code == 200
    assert api.get(f"/api/v1/intake-submissions/{submission.pk}/").status_code == 200


# --- API: lists are scoped, not refused -------------------------------------------------------


def test_lists_show_a_colleague_only_the_patients_they_may_open(
    colleague_api, colleague, owner_api, therapist_api, record, clinic, patient
):
    session, submission = record
    own_patient = PatientFactory(clinic=clinic)
    own = TreatmentSessionFactory(
        clinic=clinic, patient=own_patient, practitioner=colleague.practitioner_profiles.get()
    )

    def ids(client, url):
        response = client.get(url)
        assert response.status_code == 200
        return {row["id"] for row in response.json()["results"]}

    assert ids(colleague_api, "/api/v1/notes/") == {own.pk}
    assert ids(colleague_api, "/api/v1/intake-submissions/") == set()
    assert ids(therapist_api, "/api/v1/notes/") == {session.pk}
    assert ids(owner_api, "/api/v1/notes/") == {session.pk, own.pk}
    assert ids(owner_api, "/api/v1/intake-submissions/") == {submission.pk}

    break_glass_open(user=colleague, patient=patient, reason=REASON)
    assert ids(colleague_api, "/api/v1/notes/") == {session.pk, own.pk}
    assert ids(colleague_api, "/api/v1/intake-submissions/") == {submission.pk}


# --- admin ----------------------------------------------------------------------------------


def test_admin_note_page_shows_a_colleague_a_message_and_no_content(client, colleague, therapist, record):
    session, _ = record
    url = f"/admin/treatment_sessions/treatmentsession/{session.pk}/change/"
    client.force_login(colleague)
    response = client.get(url, follow=True)
    body = response.content.decode()
    assert "not this patient&#x27;s usual practitioner" in body or "not this patient's usual practitioner" in body
    assert SUBJECTIVE not in body
    [event] = denied_events(colleague)
    assert event.patient_id == session.patient_id
    listing = client.get("/admin/treatment_sessions/treatmentsession/").content.decode()
    assert f"/{session.pk}/change/" not in listing

    client.force_login(therapist)
    assert SUBJECTIVE in client.get(url).content.decode()


def test_admin_note_page_opens_after_breaking_the_glass(client, colleague, record, patient):
    session, _ = record
    break_glass_open(user=colleague, patient=patient, reason=REASON)
    client.force_login(colleague)
    response = client.get(f"/admin/treatment_sessions/treatmentsession/{session.pk}/change/")
    assert response.status_code == 200
    assert SUBJECTIVE in response.content.decode()


def test_admin_submission_page_shows_a_colleague_a_message_and_no_answers(client, colleague, record):
    _, submission = record
    client.force_login(colleague)
    body = client.get(f"/admin/intake/intakesubmission/{submission.pk}/change/", follow=True).content.decode()
    assert "usual practitioner" in body
    assert "Run a 10k again" not in body
    assert len(denied_events(colleague)) == 1


def test_admin_patient_page_hides_the_clinical_summary_from_a_colleague(client, colleague, owner, record, patient):
    url = f"/admin/patients/patient/{patient.pk}/change/"
    client.force_login(colleague)
    body = client.get(url).content.decode()
    assert "usual practitioner" in body
    assert "Run a 10k again" not in body
    assert len(denied_events(colleague)) == 1

    client.force_login(owner)
    assert "Run a 10k again" in client.get(url).content.decode()
