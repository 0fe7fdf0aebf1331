from celery import shared_task

from clinic.services import heartbeat_record


@shared_task(name="clinic.tasks.record_heartbeat")
def record_heartbeat(name: str = "worker") -> str:
    """Sent by beat every minute; /healthz shows when a worker last ran it."""
    return heartbeat_record(name=name).seen_at.isoformat()
