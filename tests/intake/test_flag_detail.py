"""A flag's clinical detail (title, reason quoting the answers, rule, region, side) by viewer:
owners, therapists who may open the record and clinical keys see it; the front desk, other
therapists and keys without clinical:read see the severity and a neutral line."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from clinic.security.roles import Role
from clinic.services import api_key_create
from intake.services import intake_submit
from tests.factories import AppointmentFactory, PatientFactory, clean_intake_answers, intake_link, staff

pytestmark = pytest.mark.django_db
NEUTRAL = "Urgent flag: review before treatment"


@pytest.fixture
def flag(clinic, practitioner):
    patient = PatientFactory(clinic=clinic)
    AppointmentFactory(clinic=clinic, patient=patient, practitioner=practitioner)  # the shared therapist's patient
    submission = intake_submit(
        link=intake_link(patient), answers=clean_intake_answers(calf_swollen=True, calf_swollen_side="right")
    )
    flag = submission.flags.get()
    assert "Answers:" in flag.reason  # the reason quotes the patient's answers
    return flag


def _key_client(clinic, scopes) -> APIClient:
    _, raw = api_key_create(clinic=clinic, name="ehr", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _session_client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


def _flag_views(client, flag) -> list[dict]:
    """The flag as the list, the detail and the patient show it."""
    listed = client.get("/api/v1/patient-flags/", {"patient": flag.patient_id})
    detail = client.get(f"/api/v1/patient-flags/{flag.pk}/")
    patient = client.get(f"/api/v1/patients/{flag.patient_id}/")
    assert (listed.status_code, detail.status_code, patient.status_code) == (200, 200, 200)
    return [listed.json()["results"][0], detail.json(), patient.json()["active_flags"][0]]


def _assert_neutral(views):
    for shown in views:
        assert shown["severity"] == "urgent"
        assert shown["title"] == NEUTRAL
        assert (shown["rule_code"], shown["region"], shown["side"]) == ("", "", "")
        assert "thrombosis" not in str(shown).lower()
        assert "Answers" not in str(shown)
    assert views[0]["reason"] == views[1]["reason"] == NEUTRAL


def _assert_clinical(views, flag):
    for shown in views:
        assert shown["title"] == flag.title
        assert (shown["rule_code"], shown["region"], shown["side"]) == ("dvt_suspected", "leg", "right")
    assert views[0]["reason"] == views[1]["reason"] == flag.reason


def test_a_receptionist_sees_the_severity_and_a_neutral_line_only(receptionist_api, flag):
    _assert_neutral(_flag_views(receptionist_api, flag))


def test_an_intake_read_key_without_the_clinical_scope_sees_no_clinical_text(clinic, flag):
    _assert_neutral(_flag_views(_key_client(clinic, ["intake:read", "patients:read"]), flag))


def test_a_key_with_clinical_read_sees_the_reason(clinic, flag):
    _assert_clinical(_flag_views(_key_client(clinic, ["intake:read", "patients:read", "clinical:read"]), flag), flag)


def test_the_owner_sees_the_reason(owner_api, flag):
    _assert_clinical(_flag_views(owner_api, flag), flag)


def test_the_patients_therapist_sees_the_reason(therapist_api, flag):
    _assert_clinical(_flag_views(therapist_api, flag), flag)


def test_a_therapist_who_may_not_open_the_record_sees_a_neutral_line(clinic, flag):
    stranger = staff(clinic, Role.THERAPIST, username="stranger-therapist")
    _assert_neutral(_flag_views(_session_client(stranger), flag))


def test_filtering_by_rule_is_refused_to_the_front_desk(receptionist_api, owner_api, clinic, flag):
    assert receptionist_api.get("/api/v1/patient-flags/", {"rule_code": "dvt_suspected"}).status_code == 403
    key = _key_client(clinic, ["intake:read"])
    assert key.get("/api/v1/patient-flags/", {"rule_code": "dvt_suspected"}).status_code == 403
    listed = owner_api.get("/api/v1/patient-flags/", {"rule_code": "dvt_suspected"})
    assert [row["id"] for row in listed.json()["results"]] == [flag.pk]


def test_the_admin_flag_pages_hide_the_reason_from_a_receptionist(client, receptionist, flag):
    client.force_login(receptionist)
    for url in (
        "/admin/intake/patientflag/",
        f"/admin/intake/patientflag/{flag.pk}/change/",
        f"/admin/patients/patient/{flag.patient_id}/change/",
    ):
        response = client.get(url)
        body = response.content.decode()
        assert response.status_code == 200, url
        assert NEUTRAL in body, url
        assert flag.title not in body, url
        assert "Answers:" not in body, url
    assert "rule_code" not in client.get("/admin/intake/patientflag/").content.decode()


def test_the_admin_flag_pages_show_the_reason_to_the_patients_therapist(client, therapist, flag):
    client.force_login(therapist)
    body = client.get(f"/admin/intake/patientflag/{flag.pk}/change/").content.decode()
    assert "Answers:" in body
    assert flag.title in body
