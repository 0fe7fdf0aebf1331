"""Exports through the API: an asynchronous job, downloadable once by whoever asked, expiring,
audited; CSV like `manage.py export_csv` or FHIR NDJSON (bulk-data style, one resource a line)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from clinic.models import AuditAction, AuditEvent, ExportJob
from clinic.services import api_key_create
from patients.tasks import expire_exports, run_export_job
from tests.factories import AppointmentFactory, PatientFactory
from tests.fhir_validation import assert_valid_fhir

pytestmark = pytest.mark.django_db

EXPORTS = "/api/v1/exports/"


def key_client(clinic, *scopes: str) -> APIClient:
    _, raw = api_key_create(clinic=clinic, name="bookkeeping", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def exporter(clinic):
    return key_client(clinic, "exports:read", "exports:write", "patients:read", "appointments:read")


@pytest.fixture
def patients(clinic):
    return [
        PatientFactory(clinic=clinic, given_name="Maya", family_name="Singh", email="maya@example.com"),
        PatientFactory(clinic=clinic, given_name="=cmd|' /C calc'!A0", family_name="Tremblay"),
    ]


def _export(client, django_capture_on_commit_callbacks, **body):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(EXPORTS, body, format="json")
    assert response.status_code == 202, response.content
    assert len(callbacks) == 1  # queued for a worker once the request commits
    job = response.json()
    run_export_job(job["id"])  # what the worker runs
    return job


def test_a_patients_csv_export_is_downloaded_once_by_whoever_asked(
    exporter, clinic, patients, django_capture_on_commit_callbacks
):
    job = _export(exporter, django_capture_on_commit_callbacks, kind="patients")
    assert job["status"] == "queued"
    assert job["download"] is None
    status = exporter.get(f"{EXPORTS}{job['id']}/").json()
    assert status["status"] == "succeeded"
    assert status["rows"] == 2
    assert status["download"] == f"/api/v1/exports/{job['id']}/download/"

    file = exporter.get(status["download"])
    assert file.status_code == 200
    assert file["Content-Type"] == "text/csv; charset=utf-8"
    assert file["Content-Disposition"] == f'attachment; filename="{clinic.slug}-patients-{job["id"]}.csv"'
    rows = list(csv.DictReader(io.StringIO(file.content.decode())))
    assert [row["family_name"] for row in rows] == ["Singh", "Tremblay"]
    assert rows[1]["given_name"].startswith("'=")  # the safe writer defuses spreadsheet formulas

    again = exporter.get(status["download"])
    assert again.status_code == 410
    assert again.json()["detail"] == "This export was downloaded already; request a new one."
    stored = ExportJob.objects.get(pk=job["id"])
    assert stored.content == ""  # the file is not kept once it has left
    assert stored.downloaded_at is not None
    steps = [e.extra["step"] for e in AuditEvent.objects.filter(action=AuditAction.EXPORT).order_by("id")]
    assert steps == ["requested", "downloaded"]


def test_appointments_as_fhir_ndjson_one_valid_resource_a_line(
    exporter, clinic, patients, django_capture_on_commit_callbacks
):
    AppointmentFactory(clinic=clinic, patient=patients[0])
    AppointmentFactory(clinic=clinic, patient=patients[1], start=timezone.now() + dt.timedelta(days=3))
    job = _export(exporter, django_capture_on_commit_callbacks, kind="appointments", format="ndjson")
    file = exporter.get(f"{EXPORTS}{job['id']}/download/", HTTP_ACCEPT="application/fhir+ndjson")
    assert file.status_code == 200
    assert file["Content-Type"] == "application/fhir+ndjson; charset=utf-8"
    lines = file.content.decode().splitlines()
    assert len(lines) == 2
    for line in lines:
        resource = json.loads(line)
        assert resource["resourceType"] == "Appointment"
        assert_valid_fhir(resource)


def test_patients_as_fhir_ndjson(exporter, patients, django_capture_on_commit_callbacks):
    job = _export(exporter, django_capture_on_commit_callbacks, kind="patients", format="ndjson")
    lines = exporter.get(f"{EXPORTS}{job['id']}/download/").content.decode().splitlines()
    resources = [json.loads(line) for line in lines]
    assert [r["name"][0]["family"] for r in resources] == ["Singh", "Tremblay"]
    for resource in resources:
        assert_valid_fhir(resource)


def test_only_the_requester_sees_and_downloads_a_job(exporter, clinic, owner_api, django_capture_on_commit_callbacks):
    job = _export(exporter, django_capture_on_commit_callbacks, kind="patients")
    colleague = key_client(clinic, "exports:read", "exports:write", "patients:read")
    assert colleague.get(f"{EXPORTS}{job['id']}/download/").status_code == 404
    assert colleague.get(f"{EXPORTS}{job['id']}/").status_code == 404
    assert colleague.get(EXPORTS).json()["results"] == []
    # Owners see every export of the clinic, but only whoever asked downloads it.
    assert owner_api.get(f"{EXPORTS}{job['id']}/").json()["status"] == "succeeded"
    refused = owner_api.get(f"{EXPORTS}{job['id']}/download/")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "Only whoever asked for an export can download it."
    assert exporter.get(f"{EXPORTS}{job['id']}/download/").status_code == 200


def test_an_owner_session_exports_and_downloads_its_own(owner_api, patients, django_capture_on_commit_callbacks):
    job = _export(owner_api, django_capture_on_commit_callbacks, kind="patients")
    assert owner_api.get(f"{EXPORTS}{job['id']}/download/").status_code == 200


def test_a_key_without_the_scope_is_refused_naming_it(clinic):
    no_exports = key_client(clinic, "patients:read")
    refused = no_exports.post(EXPORTS, {"kind": "patients"}, format="json")
    assert refused.status_code == 403
    assert "exports:write" in refused.json()["detail"]
    no_patients = key_client(clinic, "exports:write", "exports:read", "appointments:read")
    refused = no_patients.post(EXPORTS, {"kind": "patients"}, format="json")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "This API key lacks the scope patients:read, which exporting patients needs."
    assert not ExportJob.objects.exists()


def test_receptionists_and_therapists_cannot_export(receptionist_api, therapist_api):
    for client in (receptionist_api, therapist_api):
        assert client.post(EXPORTS, {"kind": "patients"}, format="json").status_code == 403
    assert not ExportJob.objects.exists()


def test_bad_input_is_a_field_error_and_queues_nothing(exporter):
    response = exporter.post(EXPORTS, {"kind": "invoices", "format": "xlsx"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"kind", "format"}
    assert not ExportJob.objects.exists()


def test_not_finished_is_409_and_expired_is_410(exporter, patients, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        job = exporter.post(EXPORTS, {"kind": "patients"}, format="json").json()
    early = exporter.get(f"{EXPORTS}{job['id']}/download/")
    assert early.status_code == 409
    run_export_job(job["id"])
    ExportJob.objects.filter(pk=job["id"]).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    assert expire_exports() == 1
    assert ExportJob.objects.get(pk=job["id"]).content == ""
    late = exporter.get(f"{EXPORTS}{job['id']}/download/")
    assert late.status_code == 410
    assert late.json()["detail"] == "This export has expired; request a new one."


def test_a_redelivered_task_writes_the_file_once(exporter, patients, django_capture_on_commit_callbacks):
    job = _export(exporter, django_capture_on_commit_callbacks, kind="patients")
    finished = ExportJob.objects.get(pk=job["id"]).finished_at
    run_export_job(job["id"])
    assert ExportJob.objects.get(pk=job["id"]).finished_at == finished
