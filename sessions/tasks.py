from celery import shared_task

from sessions.services import waitlist_expire_due


@shared_task(name="sessions.tasks.expire_waitlist_offers")
def expire_waitlist_offers() -> dict[str, int]:
    """Beat, every minute: expire waitlist offers whose time is up and lapse passed windows."""
    return waitlist_expire_due()
