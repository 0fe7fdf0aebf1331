from celery import shared_task

from outcomes.services import outcome_repeats_send


@shared_task(name="outcomes.tasks.send_outcome_repeats")
def send_outcome_repeats() -> int:
    """Beat, hourly: links for the courses whose clinic's rhythm says a repeat is due."""
    return outcome_repeats_send()
