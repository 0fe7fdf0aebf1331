"""CSV import through the API: an asynchronous job with a status resource, all rows or none."""

from __future__ import annotations

import pytest

from clinic.models import ImportJob, ImportJobStatus
from patients.models import Patient
from patients.tasks import run_import_job

pytestmark = pytest.mark.django_db

GOOD = "First Name,Surname\nAda,Moss\nBen,Stone\n"
BAD = "First Name,Surname\nAda,Moss\n,Stone\n"
MAPPING = {"given_name": "First Name", "family_name": "Surname"}


def _submit(client, text, **extra):
    body = {"csv": text, "mapping": MAPPING, **extra}
    return client.post("/api/v1/patient-imports/", body, format="json")


def test_a_submitted_import_is_queued_after_commit_and_its_status_tells_the_outcome(
    owner_api, clinic, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = _submit(owner_api, GOOD)
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert "csv" not in response.json()
    assert len(callbacks) == 1
    job_id = response.json()["id"]
    run_import_job(job_id)  # what the worker runs
    status = owner_api.get(f"/api/v1/patient-imports/{job_id}/").json()
    assert status["status"] == "succeeded"
    assert status["created_count"] == 2
    assert sorted(Patient.objects.filter(clinic=clinic).values_list("given_name", flat=True)) == ["Ada", "Ben"]
    assert ImportJob.objects.get(pk=job_id).csv_text == ""  # the upload is not kept


def test_a_bad_row_fails_the_job_and_imports_nothing(owner_api):
    job_id = _submit(owner_api, BAD).json()["id"]
    run_import_job(job_id)
    status = owner_api.get(f"/api/v1/patient-imports/{job_id}/").json()
    assert status["status"] == "failed"
    assert "given_name" in status["errors"]["3"]
    assert not Patient.objects.exists()


def test_a_dry_run_reports_and_writes_nothing(owner_api):
    job_id = _submit(owner_api, GOOD, dry_run=True).json()["id"]
    run_import_job(job_id)
    job = ImportJob.objects.get(pk=job_id)
    assert job.status == ImportJobStatus.SUCCEEDED
    assert job.rows == 2
    assert job.created_count == 0
    assert not Patient.objects.exists()


def test_a_redelivered_task_runs_the_job_once(owner_api):
    job_id = _submit(owner_api, GOOD).json()["id"]
    run_import_job(job_id)
    run_import_job(job_id)
    assert Patient.objects.count() == 2


def test_missing_columns_fail_the_job_with_a_reason(owner_api):
    job_id = owner_api.post("/api/v1/patient-imports/", {"csv": "a,b\n1,2\n"}, format="json").json()["id"]
    run_import_job(job_id)
    job = ImportJob.objects.get(pk=job_id)
    assert job.status == ImportJobStatus.FAILED
    assert "Missing column" in job.detail


def test_unknown_mapping_fields_are_refused_before_queuing(owner_api):
    response = owner_api.post(
        "/api/v1/patient-imports/", {"csv": GOOD, "mapping": {"shoe_size": "Shoe"}}, format="json"
    )
    assert response.status_code == 400
    assert "mapping" in response.json()["errors"]
    assert not ImportJob.objects.exists()


def test_a_retried_submission_with_the_same_idempotency_key_queues_one_job(owner_api):
    body = {"csv": GOOD, "mapping": MAPPING}
    first = owner_api.post("/api/v1/patient-imports/", body, format="json", HTTP_IDEMPOTENCY_KEY="upload-1")
    again = owner_api.post("/api/v1/patient-imports/", body, format="json", HTTP_IDEMPOTENCY_KEY="upload-1")
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert ImportJob.objects.count() == 1


def test_receptionists_cannot_import(receptionist_api):
    assert _submit(receptionist_api, GOOD).status_code == 403
