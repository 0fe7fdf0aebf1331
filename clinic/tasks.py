from celery import shared_task

from clinic.messaging import message_send, messages_dispatch_due
from clinic.services import heartbeat_record


@shared_task(name="clinic.tasks.record_heartbeat")
def record_heartbeat(name: str = "worker") -> str:
    """Sent by beat every minute; /healthz shows when a worker last ran it."""
    return heartbeat_record(name=name).seen_at.isoformat()


@shared_task(name="clinic.tasks.dispatch_due_messages")
def dispatch_due_messages() -> int:
    """Beat, every minute (and on commit of a message due now): claim due messages, queue their sends."""
    return messages_dispatch_due()


@shared_task(name="clinic.tasks.send_message")
def send_message(message_id: int, claim_token: str) -> str:
    """Deliver one claimed message. Retries live in the row (status back to scheduled with a
    later due time), so the task itself never retries and holds no ETA."""
    return message_send(message_id=message_id, claim_token=claim_token)
