"""Server-side helpers loaded only under bench.settings."""

from __future__ import annotations

from django.db import connection
from django.http import JsonResponse


def trivial(request):
    """Baseline: the cheapest Django view that returns a small JSON body."""
    return JsonResponse({"ok": True})


class QueryCountMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        count = 0

        def counter(execute, sql, params, many, context):
            nonlocal count
            count += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(counter):
            response = self.get_response(request)
        response["X-Query-Count"] = str(count)
        return response
