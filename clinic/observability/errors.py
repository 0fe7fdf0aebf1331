"""Error tracking with Sentry (enabled by SENTRY_DSN), with patient data kept out of every event.

What an event may carry is allowlisted, not blocklisted: the exception's type, module and
stack (file, function, line and the source lines around it; never local variables), the
route that failed (the transaction name is the URL pattern, `/api/v1/notes/{pk}/`), the
method, the user's and clinic's ids, the request id, and the runtime. Dropped: exception
messages and log messages' arguments (they quote what was being saved: a note's text, a
patient's name), request bodies, query strings, cookies, headers, the raw URL (intake and
calendar links carry secrets in their path), `extra`, breadcrumbs' messages and data.
"""

from __future__ import annotations

import logging

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import LoggingIntegration

SCRUBBED = "[scrubbed]"
_REQUEST_KEEP = {"method"}
_CONTEXTS_KEEP = {"runtime", "os", "trace", "device"}
_BREADCRUMB_KEEP = {"type", "category", "level", "timestamp"}


def _scrub_exception(exception: dict) -> None:
    for value in exception.get("values") or []:
        if value.get("value"):
            value["value"] = SCRUBBED
        for frame in (value.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)


def scrub_event(event: dict, hint: dict | None = None) -> dict:
    """before_send: keep only what the module docstring allows."""
    if "exception" in event:
        _scrub_exception(event["exception"])
    for thread in (event.get("threads") or {}).get("values") or []:
        for frame in (thread.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    if "logentry" in event:
        # The message template stays ("note %s could not be saved"); its arguments do not.
        template = event["logentry"].get("message") or ""
        event["logentry"] = {"message": template}
    if isinstance(event.get("message"), str):
        event["message"] = SCRUBBED
    if "request" in event:
        event["request"] = {key: value for key, value in event["request"].items() if key in _REQUEST_KEEP}
    if "user" in event:
        event["user"] = {"id": event["user"]["id"]} if event["user"].get("id") else {}
    event.pop("extra", None)
    event["contexts"] = {key: value for key, value in (event.get("contexts") or {}).items() if key in _CONTEXTS_KEEP}
    crumbs = event.get("breadcrumbs")
    if crumbs:
        values = crumbs["values"] if isinstance(crumbs, dict) else crumbs
        event["breadcrumbs"] = {"values": [scrub_breadcrumb(crumb) for crumb in values]}
    return event


def scrub_breadcrumb(crumb: dict, hint: dict | None = None) -> dict:
    return {key: value for key, value in crumb.items() if key in _BREADCRUMB_KEEP}


def sentry_init(*, dsn: str, environment: str, release: str = "", traces_sample_rate: float = 0.0, transport=None):
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        integrations=[
            DjangoIntegration(transaction_style="url", middleware_spans=False),
            CeleryIntegration(),
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
        ],
        # Collect as little as the SDK allows; scrub_event then keeps only what is allowlisted.
        data_collection={
            "user_info": False,
            "http_bodies": [],
            "database_query_data": False,
            "queues": False,
            "stack_frame_variables": False,
        },
        before_send=scrub_event,
        before_breadcrumb=scrub_breadcrumb,
        traces_sample_rate=traces_sample_rate,
        transport=transport,
    )
