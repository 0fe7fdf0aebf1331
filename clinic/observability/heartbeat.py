"""Beat's heartbeat: the beat process stamps `WorkerHeartbeat(name="beat")` when it starts and
each time it sends the minutely `clinic.tasks.record_heartbeat` (which a worker then runs and
stamps as `worker`). So the beat row says beat is alive and scheduling, the worker row that a
worker is consuming; /readyz, the metrics and the compose healthcheck of beat
(`manage.py heartbeat_check beat`) read their age.

Connected in the beat process only (`beat_init`): web and worker processes publish tasks too.
"""

from __future__ import annotations

import logging

from celery.signals import beat_init, before_task_publish
from django.apps import apps
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

logger = logging.getLogger(__name__)

HEARTBEAT_TASK = "clinic.tasks.record_heartbeat"


def beat_heartbeat_record() -> None:
    # Beat is one long-lived process outside any request: drop a connection the server closed.
    close_old_connections()
    try:
        apps.get_model("clinic", "WorkerHeartbeat").objects.update_or_create(
            name="beat", defaults={"seen_at": timezone.now()}
        )
    except DatabaseError:  # beat keeps scheduling; readiness will show the stale heartbeat
        logger.warning("beat heartbeat not recorded", exc_info=True)


def _on_publish(sender=None, **kwargs) -> None:
    if sender == HEARTBEAT_TASK:
        beat_heartbeat_record()


@beat_init.connect
def _on_beat_init(sender=None, **kwargs) -> None:
    beat_heartbeat_record()
    before_task_publish.connect(_on_publish, weak=False)
