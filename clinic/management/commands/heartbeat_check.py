"""`manage.py heartbeat_check beat|worker [--max-age SECONDS]`: exit 0 when the heartbeat is
fresh, 1 (saying how old it is) when it is stale or missing. The compose healthcheck of beat."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from clinic.observability.probes import heartbeat_ages


class Command(BaseCommand):
    help = "Exit non-zero when beat's (or the worker's) heartbeat is older than --max-age seconds."

    def add_arguments(self, parser):
        parser.add_argument("process", choices=["beat", "worker"])
        parser.add_argument("--max-age", type=int, default=None, help="seconds (default BEAT_HEARTBEAT_MAX_AGE)")

    def handle(self, *args, process: str, max_age: int | None, **options):
        limit = max_age if max_age is not None else settings.BEAT_HEARTBEAT_MAX_AGE
        age = heartbeat_ages()[process]
        if age is None:
            raise CommandError(f"{process}: no heartbeat recorded yet")
        if age > limit:
            raise CommandError(f"{process}: last heartbeat {age:.0f} s ago (more than {limit} s)")
        self.stdout.write(f"{process}: last heartbeat {age:.0f} s ago")
