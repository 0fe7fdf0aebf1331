"""Conventions shared by every API view: errors, pagination, authentication, clinic access.

Views declare who may call them and the scope an API key needs:

    class PatientViewSet(ClinicScopedMixin, viewsets.ModelViewSet):
        allowed_roles = ALL_ROLES        # staff roles allowed (default: all)
        api_scope = "patients"           # keys need patients:read / patients:write

`ClinicAccess` resolves the clinic of the request once (`request.clinic`,
`request.role`) and `ClinicScopedMixin` filters every queryset to it, so an
object of another clinic is a 404, never a 403 that confirms it exists.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, pagination, permissions, status, throttling
from rest_framework.response import Response

from clinic import degrade
from clinic.api.authentication import ALL_SCOPES, ApiKeyAuthentication, api_key_digest, api_key_generate
from clinic.fhir.outcome import fhir_not_found
from clinic.models import ApiKey, Clinic
from clinic.security.roles import ALL_ROLES, CLINICAL_ROLES, Role
from clinic.security.signin import active_memberships

# --- errors ---------------------------------------------------------------------------

PROBLEM_JSON = "application/problem+json"  # RFC 9457: what every error body of the REST API is

_TITLES = {
    400: "Invalid request",
    401: "Not authenticated",
    403: "Permission denied",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    410: "Gone",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Too many requests",
    503: "Service unavailable",
}


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class Gone(exceptions.APIException):
    status_code = status.HTTP_410_GONE
    default_detail = "This resource is no longer available."
    default_code = "gone"


class Unprocessable(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The request cannot be processed."
    default_code = "unprocessable"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def _field_errors(detail) -> dict:
    if isinstance(detail, dict):
        return {key: value if isinstance(value, list) else [value] for key, value in detail.items()}
    if isinstance(detail, list):
        return {"non_field_errors": detail}
    return {}


def exception_handler(exc, context):
    """Every error is `{"type", "title", "status", "detail", "errors"}` (RFC 9457 fields)."""
    # Imported here: DRF loads this module while rest_framework.views is still importing.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")
    elif degrade.is_database_outage(exc):
        exc = degrade.DatabaseUnavailable()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = response.status_code
    errors: dict = {}
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(response.data)
        detail = "One or more fields are invalid."
        first = next(iter(errors.values()), None)
        if list(errors) == ["non_field_errors"] and first:
            detail = str(first[0])
    else:
        data = response.data
        detail = str(data.get("detail", "")) if isinstance(data, dict) else str(data)
        if isinstance(data, dict):
            errors = {k: v if isinstance(v, list) else [v] for k, v in data.items() if k != "detail"}
    response.data = {
        "type": "about:blank",
        "title": _TITLES.get(code, response.status_text),
        "status": code,
        "detail": detail,
        "errors": errors,
    }
    # RFC 9457's media type; a client that parses any JSON reads it as before.
    response.content_type = PROBLEM_JSON
    return response


# --- pagination -----------------------------------------------------------------------


class CursorPagination(pagination.CursorPagination):
    """Cursor pages: stable under inserts, constant cost at any depth."""

    page_size = 50
    max_page_size = 100
    page_size_query_param = "page_size"
    ordering = "-id"

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            raise exceptions.ValidationError({"page_size": ["Must be a whole number."]}) from None
        if not 1 <= size <= self.max_page_size:
            raise exceptions.ValidationError({"page_size": [f"Must be between 1 and {self.max_page_size}."]})
        return size

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise exceptions.ValidationError({"cursor": ["Invalid cursor."]}) from None


# --- clinic access --------------------------------------------------------------------


def resolve_clinic(request) -> tuple[Clinic | None, Role | None]:
    """The clinic a request acts in, and the caller's role there (None for API keys).

    Staff in several clinics choose one with the `X-Clinic` header (its slug).
    """
    if isinstance(request.auth, ApiKey):
        return request.auth.clinic, None
    user = request.user
    if not user or not user.is_authenticated:
        return None, None
    wanted = request.headers.get("X-Clinic")
    found = [m for m in active_memberships(request) if m.clinic.is_active and (not wanted or m.clinic.slug == wanted)]
    if len(found) != 1:
        return None, None
    return found[0].clinic, Role(found[0].role)


class ClinicAccess(permissions.BasePermission):
    """Authenticated staff member (or API key) of one clinic, with an allowed role or scope."""

    message = "You do not have access to this resource."

    def has_permission(self, request, view) -> bool:
        if not hasattr(request, "clinic"):
            request.clinic, request.role = resolve_clinic(request)
            request._request.clinic, request._request.role = request.clinic, request.role
        if request.clinic is None:
            if not (request.user and request.user.is_authenticated) and not request.auth:
                raise exceptions.NotAuthenticated()
            self.message = "No clinic for this account; send X-Clinic with the clinic's slug."
            return False
        if isinstance(request.auth, ApiKey):
            if not getattr(view, "api_keys_allowed", True):
                self.message = "This endpoint is for staff sessions; API keys cannot use it."
                return False
            scope = required_scope(view, request)
            if not request.auth.has_scope(scope):
                self.message = f"This API key lacks the scope {scope}, which this request needs."
                return False
            return True
        allowed = getattr(view, "allowed_roles", ALL_ROLES)
        if request.method not in permissions.SAFE_METHODS:
            allowed = getattr(view, "write_roles", allowed)
        return request.role in allowed


def required_scope(view, request) -> str:
    resource = getattr(view, "api_scope", None) or "clinic"
    if getattr(view, "allowed_roles", ALL_ROLES) == CLINICAL_ROLES:
        resource = "clinical"
    mode = "read" if request.method in permissions.SAFE_METHODS else "write"
    return f"{resource}:{mode}"


class ClinicScopedMixin:
    """Filters the view's queryset to the request's clinic and stamps it on create."""

    clinic_field = "clinic"

    def get_queryset(self):
        return super().get_queryset().filter(**{self.clinic_field: self.request.clinic})

    def perform_create(self, serializer):
        serializer.save(clinic=self.request.clinic)


# --- rate limits ----------------------------------------------------------------------


class ClinicRateThrottle(throttling.BaseThrottle):
    """Requests per minute per API key or per user, at the rate the clinic sets.

    A counter per caller and clock minute in the default cache (Redis when REDIS_URL is set),
    so all web processes share it: one atomic increment per request whatever the limit.
    (DRF's SimpleRateThrottle keeps every timestamp of the last minute and rewrites the list on
    each request, a cost that grows with the limit: 6,000 entries for a 100 req/s integration.)
    A fixed window lets a caller spend up to twice the limit across a minute boundary; the
    limit protects the service, it is not a billing meter. Runs after ClinicAccess, which has
    set `request.clinic`. With the cache unreachable it fails open, logged and counted
    (`clinic.degrade`): an outage of Redis must not take the API down with it.
    """

    def __init__(self):
        self._wait: float | None = None

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey):
            return f"throttle:key:{request.auth.pk}"
        if request.user and request.user.is_authenticated:
            return f"throttle:user:{request.user.pk}"
        return None

    def allow_request(self, request, view):
        clinic = getattr(request, "clinic", None)
        key = self.get_cache_key(request, view) if clinic is not None else None
        if key is None:
            return True
        now = time.time()
        window = f"{key}:{int(now // 60)}"
        if not degrade.CACHE.usable():
            degrade.CACHE.unavailable()
            return True
        try:
            count = self._count(window)
        except degrade.CACHE_ERRORS as exc:  # the cache is down: fail open, logged and counted
            degrade.CACHE.unavailable(exc)
            return True
        if count <= clinic.api_rate_limit_per_minute:
            return True
        self._wait = 60 - now % 60
        return False

    @staticmethod
    def _count(window: str) -> int:
        cache.add(window, 0, timeout=120)
        try:
            return cache.incr(window)
        except ValueError:  # evicted between the two calls
            cache.set(window, 1, timeout=120)
            return 1

    def wait(self):
        return self._wait


# --- emergency (break-glass) access ----------------------------------------------------

BREAK_GLASS_DETAIL = (
    "You are not this patient's usual practitioner. To see the record, open emergency access with "
    'POST /api/v1/break-glass/ {"patient": <id>, "reason": "<why you need it>"}; '
    "the access is audited and reviewed by the clinic owner."
)


class BreakGlassRequiredError(exceptions.PermissionDenied):
    default_detail = BREAK_GLASS_DETAIL
    default_code = "break_glass_required"


def error_response(status_code: int, detail: str, errors: dict | None = None) -> Response:
    response = Response(
        {
            "type": "about:blank",
            "title": _TITLES.get(status_code, "Error"),
            "status": status_code,
            "detail": detail,
            "errors": errors or {},
        },
        status=status_code,
    )
    response.content_type = PROBLEM_JSON
    return response


__all__ = ["ALL_SCOPES", "ApiKeyAuthentication", "api_key_digest", "api_key_generate"]


def not_found(request, exception=None):
    """handler404: a URL that matches no route is a 404 in the error format under /api/, an
    OperationOutcome under /fhir/ (an id like `1.5` never reaches a view), and Django's page elsewhere."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith("/fhir/"):
        return fhir_not_found(request)
    if request.path.startswith("/api/"):
        body = {"type": "about:blank", "title": _TITLES[404], "status": 404, "detail": "Not found.", "errors": {}}
        return JsonResponse(body, status=404, content_type=PROBLEM_JSON)
    return page_not_found(request, exception)
