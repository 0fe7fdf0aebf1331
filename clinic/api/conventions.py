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

import codecs
import datetime as dt
import json
import math
import time

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import FieldDoesNotExist, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.db.models import Q
from django.http import Http404
from django.utils.functional import cached_property
from django_filters import utils as filter_utils
from django_filters.rest_framework import (
    BooleanFilter,
    DateFilter,
    DjangoFilterBackend,
    FilterSet,
    IsoDateTimeFilter,
    ModelChoiceFilter,
    ModelMultipleChoiceFilter,
)
from rest_framework import exceptions, pagination, parsers, permissions, serializers, status, throttling
from rest_framework.response import Response
from rest_framework.utils.serializer_helpers import BindingDict

from clinic import degrade
from clinic.api.authentication import ALL_SCOPES, ApiKeyAuthentication, api_key_digest, api_key_generate
from clinic.models import ApiKey, Clinic, User
from clinic.security.roles import ALL_ROLES, CLINICAL_ROLES, Role
from clinic.security.signin import active_memberships

# --- errors ---------------------------------------------------------------------------

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
            return request.auth.has_scope(required_scope(view, request))
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


# --- strict input ---------------------------------------------------------------------

# Query parameters every list understands, whatever its filters.
COMMON_QUERY_PARAMS = frozenset({"cursor", "page_size", "ordering", "search"})
_BOOLEANS = frozenset({"true", "false", "1", "0"})
_NOT_FOUND_CHOICE = {"invalid_choice": "Not found.", "invalid_pk_value": "Not found."}


def clinic_rows(queryset, clinic):
    """The rows of `queryset` that belong to `clinic`: its own (and shared catalog rows), or for
    users, the clinic's staff (past and present)."""
    model = queryset.model
    if model is User:
        return queryset.filter(memberships__clinic=clinic).distinct()
    try:
        field = model._meta.get_field("clinic")
    except FieldDoesNotExist:
        return queryset
    return queryset.filter(Q(clinic=clinic) | Q(clinic__isnull=True) if field.null else Q(clinic=clinic))


class StrictFilterBackend(DjangoFilterBackend):
    """django-filter, plus: a query parameter no filter knows is a 400, not silently ignored.

    A typo like `?udpated_since=` would otherwise return every row and look like it worked.
    Views with extra parameters of their own list them in `extra_query_params`.

    An id filter (`?patient=`) chooses among the rows of the caller's clinic: an id of another
    clinic is "Not found.", exactly like an id that exists nowhere, so a filter cannot tell
    whether a row exists in another clinic. The values that passed are `view.filter_values`
    (for views that record them, e.g. in the audit trail).
    """

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None and getattr(request, "clinic", None) is not None:
            for declared in filterset.filters.values():  # the instance's copies: the class keeps its own
                if isinstance(declared, (ModelChoiceFilter, ModelMultipleChoiceFilter)):
                    declared.queryset = clinic_rows(declared.get_queryset(request), request.clinic)
                    declared.extra["error_messages"] = _NOT_FOUND_CHOICE
        return filterset

    def filter_queryset(self, request, queryset, view):
        allowed = set(COMMON_QUERY_PARAMS) | set(getattr(view, "extra_query_params", ()))
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None:
            allowed |= set(filterset_class.base_filters)
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise exceptions.ValidationError({name: ["Unknown query parameter."] for name in unknown})
        if filterset_class is not None:
            # django-filter reads an empty value as "no filter"; a client that sent one meant something.
            empty = [name for name in filterset_class.base_filters if request.query_params.get(name, None) == ""]
            if empty:
                raise exceptions.ValidationError({name: ["Give a value or leave the parameter out."] for name in empty})
            # django-filter reads a boolean it cannot parse as "no filter"; say so instead.
            bad = [
                name
                for name, declared in filterset_class.base_filters.items()
                if isinstance(declared, BooleanFilter)
                and name in request.query_params
                and request.query_params[name].lower() not in _BOOLEANS
            ]
            if bad:
                raise exceptions.ValidationError({name: ["Must be true or false."] for name in bad})
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise filter_utils.translate_validation(filterset.errors)
        view.filter_values = {
            name: value for name, value in filterset.form.cleaned_data.items() if name in request.query_params
        }
        return filterset.qs


# --- JSON bodies ------------------------------------------------------------------------

# Deeper than any body the API reads (a few levels), far below Python's recursion limit.
MAX_JSON_DEPTH = 32


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 reads as infinity
        raise ValueError(f"Number out of range: {text[:40]}")
    return value


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number.")


def _too_deep(value, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, minus the bodies that crash code after it: a 400 for numbers that are
    not finite (`NaN`, `Infinity`, `1e400`, which `int()` cannot convert) and for nesting deeper
    than MAX_JSON_DEPTH (a thousand levels raise RecursionError in the decoder)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.load(
                codecs.getreader(encoding)(stream), parse_float=_finite_float, parse_constant=_refuse_constant
            )
            if _too_deep(data, MAX_JSON_DEPTH):
                raise RecursionError
        except RecursionError:
            raise exceptions.ParseError(
                f"The JSON body is too deeply nested (at most {MAX_JSON_DEPTH} levels)."
            ) from None
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        return data


# --- dates ----------------------------------------------------------------------------

# Every date and date-time the API reads (query filters, body fields, FHIR searches) lies in
# these years: room for any birth date and any booking, and far from the ends of the calendar,
# where arithmetic overflows (a slot search ending 9999-12-31 steps past year 9999) and an
# offset pushes a value out of it (0001-01-01T00:00:00+05:00 has no UTC equivalent).
EARLIEST_YEAR, LATEST_YEAR = 1900, 2199
DATE_RANGE_ERROR = f"Give a date between {EARLIEST_YEAR}-01-01 and {LATEST_YEAR}-12-31."


def in_supported_range(value: dt.date) -> bool:
    """True for a date or date-time inside the supported years (a date-time in its own offset)."""
    return EARLIEST_YEAR <= value.year <= LATEST_YEAR


class SupportedDateTimeField(serializers.DateTimeField):
    """DRF's DateTimeField, limited to the supported years."""

    default_error_messages = {"out_of_range": DATE_RANGE_ERROR}

    def to_internal_value(self, value):
        value = super().to_internal_value(value)
        if not in_supported_range(value):
            self.fail("out_of_range")
        return value


class SupportedDateField(serializers.DateField):
    """DRF's DateField, limited to the supported years."""

    default_error_messages = {"out_of_range": DATE_RANGE_ERROR}

    def to_internal_value(self, value):
        value = super().to_internal_value(value)
        if not in_supported_range(value):
            self.fail("out_of_range")
        return value


class SupportedDateFilter(DateFilter):
    """django-filter's DateFilter, limited to the supported years."""

    def filter(self, qs, value):
        if value is not None and not in_supported_range(value):
            raise exceptions.ValidationError({filter_parameter(self): [DATE_RANGE_ERROR]})
        return super().filter(qs, value)


def filter_parameter(declared) -> str:
    """The query parameter a filter reads (`updated_since`), for its errors; not the model field."""
    filters = getattr(getattr(declared, "parent", None), "filters", {})
    return next((name for name, candidate in filters.items() if candidate is declared), declared.field_name)


class UtcIsoDateTimeFilter(IsoDateTimeFilter):
    """ISO 8601 date-time filter whose value reaches the database in UTC.

    PostgreSQL refuses offsets beyond +-15:59 that ISO 8601 allows (`-22:42`): normalising
    here turns a 500 into a working filter. Outside the supported years it is a 400.
    """

    def filter(self, qs, value):
        if value is not None:
            if not in_supported_range(value):
                raise exceptions.ValidationError({filter_parameter(self): [DATE_RANGE_ERROR]})
            value = value.astimezone(dt.UTC)
        return super().filter(qs, value)


class UpdatedSinceFilterSet(FilterSet):
    """Lists an integration syncs: `?updated_since=` (any ISO 8601 offset)."""

    updated_since = UtcIsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")


class RejectUnknownFieldsMixin:
    """Serializer mixin: a field the serializer does not write is a 400, not silently dropped.

    Read-only fields (`id`, `clinic`, timestamps) count as unknown on write, so a client
    that sends `clinic` learns it cannot set it.
    """

    def to_internal_value(self, data):
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise exceptions.ValidationError({name: ["Unknown or read-only field."] for name in unknown})
        return super().to_internal_value(data)


class StrictModelSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    """Base for every writable API serializer."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: SupportedDateTimeField,
        models.DateField: SupportedDateField,
    }


class StrictSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """Base for every writable API serializer that is not a ModelSerializer."""


class SharedFieldsMixin:
    """Serializer mixin for output-only serializers: one bound field set per class.

    DRF builds the fields on every instance: it deep-copies the declared fields (each nested
    serializer and its children again) and a ModelSerializer introspects its model anew, which
    costs more than representing a note. An output-only serializer's fields keep no state
    between calls and read no context, so every instance shares the set built once on a bare
    instance of the class. Only for serializers that never validate input and whose fields (and
    nested fields) do not read `context`, `instance` or `parent` while representing.
    """

    @cached_property
    def fields(self):
        cls = type(self)
        shared = cls.__dict__.get("_shared_fields")
        if shared is None:
            prototype = cls()  # no instance, data or context to keep alive
            shared = BindingDict(prototype)
            for name, field in prototype.get_fields().items():
                shared[name] = field
            cls._shared_fields = shared
        return shared


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
    return Response(
        {
            "type": "about:blank",
            "title": _TITLES.get(status_code, "Error"),
            "status": status_code,
            "detail": detail,
            "errors": errors or {},
        },
        status=status_code,
    )


__all__ = ["ALL_SCOPES", "ApiKeyAuthentication", "api_key_digest", "api_key_generate"]


def not_found(request, exception=None):
    """handler404: a URL that matches no route is a 404 in the error format under /api/ and /fhir/
    (an id like `1.5` never reaches a view), and Django's page elsewhere."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith(("/api/", "/fhir/")):
        body = {"type": "about:blank", "title": _TITLES[404], "status": 404, "detail": "Not found.", "errors": {}}
        return JsonResponse(body, status=404)
    return page_not_found(request, exception)
