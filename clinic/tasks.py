from collections import Counter

from celery import shared_task

from clinic.api.idempotency import idempotency_records_delete_expired
from clinic.messaging.sending import message_send, messages_dispatch_due, messages_send
from clinic.security.audit import audit_checkpoint_record
from clinic.services import heartbeat_record
from clinic.webhooks.delivery import webhook_deliveries_due, webhook_delivery_attempt


@shared_task(name="clinic.tasks.record_heartbeat")
def record_heartbeat(name: str = "worker") -> str:
    """Sent by beat every minute; /healthz shows when a worker last ran it."""
    return heartbeat_record(name=name).seen_at.isoformat()


@shared_task(name="clinic.tasks.checkpoint_audit_chains")
def checkpoint_audit_chains() -> int:
    """Every 15 minutes: anchor the head of each audit chain that grew in a signed checkpoint
    (verify_audit checks the chains against them). Idempotent; returns how many were written."""
    return len(audit_checkpoint_record())


@shared_task(name="clinic.tasks.delete_expired_idempotency_records")
def delete_expired_idempotency_records() -> int:
    """Hourly: drop Idempotency-Key records past their 24-hour retention."""
    return idempotency_records_delete_expired()


@shared_task(name="clinic.tasks.deliver_webhook")
def deliver_webhook(delivery_id: int) -> str:
    """One attempt at one webhook delivery; the sweeper re-queues it when a retry is due."""
    delivery = webhook_delivery_attempt(delivery_id=delivery_id)
    return "skipped" if delivery is None else delivery.status


@shared_task(name="clinic.tasks.sweep_webhook_deliveries")
def sweep_webhook_deliveries() -> int:
    """Every minute: queue the pending deliveries whose next attempt has come."""
    due = webhook_deliveries_due()
    for delivery_id in due:
        deliver_webhook.delay(delivery_id)
    return len(due)


@shared_task(name="clinic.tasks.dispatch_due_messages")
def dispatch_due_messages() -> int:
    """Beat, every minute (and on commit of a message due now): claim due messages, queue their sends."""
    return messages_dispatch_due()


@shared_task(name="clinic.tasks.send_messages")
def send_messages(message_ids: list[int], claim_token: str) -> dict[str, int]:
    """Deliver a chunk of messages claimed together (the sweeper queues one per
    MESSAGE_SEND_CHUNK_SIZE rows). Retries live in the rows (status back to scheduled with
    a later due time), so the task itself never retries and holds no ETA. Returns how many
    of each outcome."""
    return dict(Counter(messages_send(message_ids=message_ids, claim_token=claim_token).values()))


@shared_task(name="clinic.tasks.send_message")
def send_message(message_id: int, claim_token: str) -> str:
    """Deliver one claimed message. The sweeper queues `send_messages` chunks now; this
    stays for tasks queued before that change."""
    return message_send(message_id=message_id, claim_token=claim_token)
