from celery import shared_task

from clinic.services import heartbeat_record


@shared_task(name="clinic.tasks.record_heartbeat")
def record_heartbeat(name: str = "worker") -> str:
    """Sent by beat every minute; /healthz shows when a worker last ran it."""
    return heartbeat_record(name=name).seen_at.isoformat()


@shared_task(name="clinic.tasks.delete_expired_idempotency_records")
def delete_expired_idempotency_records() -> int:
    """Hourly: drop Idempotency-Key records past their 24-hour retention."""
    from clinic.idempotency import idempotency_records_delete_expired

    return idempotency_records_delete_expired()
