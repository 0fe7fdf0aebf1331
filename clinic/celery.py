"""The Celery application: broker from settings (Redis, or the embedded filesystem broker)."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")

app = Celery("clinic")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Every periodic job of the project, in one place. Time-based work is stored as
# rows with a due time; these sweepers claim what is due (no far-future ETAs).
app.conf.beat_schedule = {
    "worker-heartbeat": {"task": "clinic.tasks.record_heartbeat", "schedule": crontab()},
    "waitlist-offer-expiry": {"task": "sessions.tasks.expire_waitlist_offers", "schedule": crontab()},
    "webhook-deliveries": {"task": "clinic.tasks.sweep_webhook_deliveries", "schedule": crontab()},
    "idempotency-cleanup": {"task": "clinic.tasks.delete_expired_idempotency_records", "schedule": crontab(minute=17)},
    # Signed checkpoints of the audit chains' heads (verify_audit checks them). Only events newer
    # than the last checkpoint can be cut from a chain's end unnoticed: the interval is that window.
    "audit-checkpoint": {"task": "clinic.tasks.checkpoint_audit_chains", "schedule": crontab(minute="*/15")},
    # Export files nobody downloaded within a day; the rows stay as the record.
    "export-expiry": {"task": "patients.tasks.expire_exports", "schedule": crontab(minute=23)},
    # Erased patients past the retention period; idempotent, so a missed or doubled run is harmless.
    "patient-retention": {"task": "patients.tasks.apply_retention", "schedule": crontab(hour=3, minute=41)},
    # Claims due messages (and claims of dead workers) and queues their sends. Ticks that
    # pile up while the broker was down expire instead of running back to back.
    # Outcome measure repeats on each clinic's rhythm (every N visits or weeks); each course is
    # locked and re-checked, so a doubled run sends nothing twice.
    "outcome-repeats": {"task": "outcomes.tasks.send_outcome_repeats", "schedule": crontab(minute=23)},
    "messages-dispatch-due": {
        "task": "clinic.tasks.dispatch_due_messages",
        "schedule": crontab(),
        "options": {"expires": 55},
    },
}


@app.on_after_configure.connect
def _embedded_broker_folders(sender, **kwargs):
    # The filesystem transport needs its folders to exist before the first publish.
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)


def task_named(name: str):
    """The registered task `name`, for modules its tasks module imports (a direct import would
    be a cycle). Autodiscovery is lazy outside workers, so a web process imports the apps'
    tasks modules on first use."""
    if name not in app.tasks:
        app.loader.import_default_modules()
    return app.tasks[name]
