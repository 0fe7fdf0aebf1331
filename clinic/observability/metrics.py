"""Prometheus metrics at /metrics, for a scraper that sends `Authorization: Bearer <METRICS_TOKEN>`.

Requests are counted and timed by the request log middleware in each web process. With
several gunicorn workers, set PROMETHEUS_MULTIPROC_DIR (the image does): each process writes
its series to files there and a scrape adds them up (deploy/gunicorn.conf.py removes a dead
worker's files). The state of the work queues is read from the database and the broker at
scrape time, so any web process gives the same answer: Celery queue lengths, the outbox's
due messages and the age of the oldest, webhook deliveries failed and retrying, and the age
of beat's and the worker's heartbeats. A probe that fails leaves its series out and sets
`clinic_probe_up{probe=...}` to 0.
"""

from __future__ import annotations

import hmac
import logging
import os

from django.conf import settings
from django.http import Http404, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from clinic.observability import probes

logger = logging.getLogger(__name__)

REQUESTS = Counter("clinic_http_requests", "HTTP requests answered", ["method", "view", "status"])
DURATION = Histogram(
    "clinic_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "view"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def request_observe(*, method: str, view: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, view, str(status)).inc()
    DURATION.labels(method, view).observe(seconds)


class WorkStateCollector:
    """Gauges read at scrape time from the database and the broker."""

    def collect(self):
        up = GaugeMetricFamily("clinic_probe_up", "Whether the probe behind a series answered", labels=["probe"])
        for name, probe in (
            ("queue", self._queue),
            ("outbox", self._outbox),
            ("webhooks", self._webhooks),
            ("heartbeats", self._heartbeats),
        ):
            try:
                yield from probe()
            except Exception:  # a down dependency must not fail the scrape of the others
                logger.warning("metrics probe %s failed", name, exc_info=True)
                up.add_metric([name], 0)
            else:
                up.add_metric([name], 1)
        yield up

    def _queue(self):
        family = GaugeMetricFamily("clinic_celery_queue_length", "Tasks waiting in a Celery queue", labels=["queue"])
        for queue, length in probes.queue_lengths().items():
            family.add_metric([queue], length)
        yield family

    def _outbox(self):
        outbox = probes.outbox_backlog()
        yield GaugeMetricFamily("clinic_outbox_due_messages", "Scheduled messages whose due time has come", outbox.due)
        yield GaugeMetricFamily(
            "clinic_outbox_oldest_due_age_seconds",
            "Seconds since the oldest unsent due message was due",
            outbox.oldest_due_age,
        )

    def _webhooks(self):
        counts = probes.webhook_failures()
        family = GaugeMetricFamily("clinic_webhook_deliveries", "Webhook deliveries by trouble", labels=["state"])
        family.add_metric(["failed"], counts["failed"])
        family.add_metric(["retrying"], counts["retrying"])
        yield family

    def _heartbeats(self):
        family = GaugeMetricFamily(
            "clinic_heartbeat_age_seconds", "Seconds since beat sent / a worker ran the heartbeat", labels=["process"]
        )
        for name, age in probes.heartbeat_ages().items():
            if age is not None:
                family.add_metric([name], age)
        yield family


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_ProcessMetrics())
    registry.register(WorkStateCollector())
    return registry


class _ProcessMetrics:
    """This process's own series (request counts and durations, process and Python stats)."""

    def collect(self):
        yield from REGISTRY.collect()


def _authorised(request) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404  # no token configured: the endpoint does not exist
    sent = request.headers.get("Authorization", "")
    return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())


@never_cache
@require_GET
def metrics_view(request):
    if not _authorised(request):
        response = HttpResponse("A bearer token is needed (METRICS_TOKEN).\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
