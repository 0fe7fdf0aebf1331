from celery import shared_task


@shared_task(name="patients.tasks.apply_retention")
def apply_retention() -> int:
    """Daily: remove erased patients past their clinic's retention period (see patients/privacy.py)."""
    from patients.privacy import retention_apply

    return len(retention_apply())
