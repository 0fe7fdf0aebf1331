from celery import shared_task

from patients.csv_io import export_job_run, export_jobs_expire, import_job_run
from patients.privacy import retention_apply


@shared_task(name="patients.tasks.apply_retention")
def apply_retention() -> int:
    """Daily: remove erased patients past their clinic's retention period (see patients/privacy.py)."""
    return len(retention_apply())


# The name it had in clinic/tasks.py, so jobs queued before the move still run.
@shared_task(name="clinic.tasks.run_import_job")
def run_import_job(job_id: int) -> None:
    """Run one CSV import submitted through the API."""
    import_job_run(job_id=job_id)


@shared_task(name="patients.tasks.run_export_job")
def run_export_job(job_id: int) -> None:
    """Write one export requested through the API."""
    export_job_run(job_id=job_id)


@shared_task(name="patients.tasks.expire_exports")
def expire_exports() -> int:
    """Hourly: drop the files of exports nobody downloaded in time."""
    return export_jobs_expire()
