"""One log line per request (formatted as JSON by clinic.observability.jsonlog in production).

`RequestLogMiddleware` writes one `clinic.request` line per request
with its request id, the view and route that answered (never the raw path: intake and
calendar links carry secrets in it), the clinic, the user or API key id, the client's address
(clinic.security.addresses), the status and the duration; it also counts the request for the
metrics (clinic.observability.metrics). No body, query string or patient data is logged.
"""

from __future__ import annotations

import logging
import time

from django.utils.functional import SimpleLazyObject, empty

from clinic.observability import metrics
from clinic.security.addresses import client_ip

request_logger = logging.getLogger("clinic.request")


def _who(request) -> dict:
    user = getattr(request, "user", None)
    if isinstance(user, SimpleLazyObject) and user._wrapped is empty:
        user = None  # never looked at: reading it now would cost a session query
    clinic = getattr(request, "clinic", None)
    return {
        "clinic_id": getattr(clinic, "pk", None),
        "user_id": user.pk if user is not None and user.is_authenticated else None,
        "api_key_id": getattr(request, "api_key_id", None),
    }


class RequestLogMiddleware:
    """Outermost but for the request id: times and logs everything inside it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        duration = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match is not None else "unmatched"
        metrics.request_observe(method=request.method, view=view, status=response.status_code, seconds=duration)
        request_logger.info(
            "%s %s %s",
            request.method,
            view,
            response.status_code,
            extra={
                "request_id": getattr(request, "request_id", ""),
                "method": request.method,
                "view": view,
                "route": match.route if match is not None else None,
                "status": response.status_code,
                "duration_ms": round(duration * 1000, 1),
                "client_ip": client_ip(request),
                **_who(request),
            },
        )
        return response
