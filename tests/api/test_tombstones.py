"""The deletion feed (`/api/v1/deleted/?since=`): merges, erasures, retention and removed note
entries leave a tombstone, each clinic sees its own, keys only the types their scopes read."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from clinic.models import Tombstone
from clinic.services import api_key_create
from patients.models import Patient
from patients.privacy import patient_erase, retention_apply
from patients.services import patient_merge
from sessions.models import Appointment, MassageEntry
from sessions.services import entry_add, entry_delete
from tests.factories import AppointmentFactory, PatientFactory, TreatmentSessionFactory
from tests.sessions.conftest import massage

pytestmark = pytest.mark.django_db


def _feed(client, headers=None, **params) -> list[dict]:
    response = client.get("/api/v1/deleted/", params, **(headers or {}))
    assert response.status_code == 200, response.content[:300]
    return response.json()["results"]


def test_a_merge_is_listed_with_the_record_kept(owner_api, owner, clinic):
    kept, duplicate = PatientFactory(clinic=clinic), PatientFactory(clinic=clinic)
    before = timezone.now()
    patient_merge(source=duplicate, target=kept, by=owner)
    [row] = _feed(owner_api, since=before.isoformat())
    assert row["object_type"] == "patients.patient"
    assert (row["object_id"], row["reason"], row["replaced_by"]) == (duplicate.pk, "merged", kept.pk)
    assert _feed(owner_api, since=(timezone.now() + dt.timedelta(seconds=1)).isoformat()) == []


def test_an_erasure_lists_the_patient_and_the_duplicates_merged_into_it(owner_api, owner, clinic):
    patient, duplicate = PatientFactory(clinic=clinic), PatientFactory(clinic=clinic)
    patient_merge(source=duplicate, target=patient, by=owner)
    patient_erase(patient=patient, by=owner, reason="Patient asked")
    erased = _feed(owner_api, reason="erased")
    assert sorted(row["object_id"] for row in erased) == sorted([patient.pk, duplicate.pk])


def test_retention_lists_the_patient_and_the_appointments_it_removed(owner_api, owner, clinic, practitioner):
    patient = PatientFactory(clinic=clinic)
    appointment = AppointmentFactory(clinic=clinic, patient=patient, practitioner=practitioner)
    patient_erase(patient=patient, by=owner, reason="Patient asked")
    assert retention_apply(now=appointment.start.replace(year=appointment.start.year + 8)) == [patient.pk]
    assert not Patient.objects.filter(pk=patient.pk).exists()
    deleted = {(row["object_type"], row["object_id"]) for row in _feed(owner_api, reason="deleted")}
    assert deleted == {("patients.patient", patient.pk), ("treatment_sessions.appointment", appointment.pk)}
    assert _feed(owner_api, type="treatment_sessions.appointment")[0]["object_id"] == appointment.pk


def test_a_removed_note_entry_is_listed_for_clinical_readers_only(
    catalogs, owner_api, receptionist_api, clinic, therapist
):
    session = TreatmentSessionFactory(clinic=clinic, practitioner__user=therapist)
    entry = entry_add(entry=massage(session), actor=therapist)
    entry_id = entry.pk
    entry_delete(entry=entry, actor=therapist)
    assert not MassageEntry.objects.filter(pk=entry_id).exists()
    [row] = _feed(owner_api)
    assert (row["object_type"], row["object_id"], row["reason"]) == (
        "treatment_sessions.massageentry",
        entry_id,
        "deleted",
    )
    assert _feed(receptionist_api) == []


def test_keys_see_only_the_types_their_scopes_read(api, owner, clinic):
    kept, duplicate = PatientFactory(clinic=clinic), PatientFactory(clinic=clinic)
    patient_merge(source=duplicate, target=kept, by=owner)
    _, calendar = api_key_create(clinic=clinic, name="calendar", scopes=["clinic:read", "appointments:read"])
    _, ehr = api_key_create(clinic=clinic, name="ehr", scopes=["clinic:read", "patients:read"])
    _, nothing = api_key_create(clinic=clinic, name="nothing", scopes=["appointments:read"])
    assert _feed(api, {"HTTP_AUTHORIZATION": f"Bearer {calendar}"}) == []
    assert [r["object_id"] for r in _feed(api, {"HTTP_AUTHORIZATION": f"Bearer {ehr}"})] == [duplicate.pk]
    refused = api.get("/api/v1/deleted/", HTTP_AUTHORIZATION=f"Bearer {nothing}")
    assert refused.status_code == 403
    assert "clinic:read" in refused.json()["detail"]


def test_another_clinics_tombstones_are_not_listed(owner_api, other_clinic):
    kept, duplicate = PatientFactory(clinic=other_clinic), PatientFactory(clinic=other_clinic)
    patient_merge(source=duplicate, target=kept)
    assert Tombstone.objects.filter(clinic=other_clinic).count() == 1
    assert _feed(owner_api) == []


def test_a_bad_since_or_reason_is_400(owner_api):
    for params in ({"since": "yesterday"}, {"since": "9999-12-31T00:00:00Z"}, {"reason": "lost"}, {"sinse": "x"}):
        response = owner_api.get("/api/v1/deleted/", params)
        assert response.status_code == 400, params
        assert set(response.json()["errors"]) == set(params)


def test_the_feed_pages_like_every_list(owner_api, owner, clinic):
    target = PatientFactory(clinic=clinic)
    for _ in range(3):
        patient_merge(source=PatientFactory(clinic=clinic), target=target, by=owner)
    first = owner_api.get("/api/v1/deleted/", {"page_size": 2}).json()
    assert len(first["results"]) == 2
    second = owner_api.get(first["next"]).json()
    assert len(second["results"]) == 1
    assert Appointment.objects.count() == 0
