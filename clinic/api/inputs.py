"""Strict input for every API: unknown query parameters and body fields are a 400, filters see
only the caller's clinic (a foreign id reads like a missing one), JSON bodies have a depth and
number limit, and dates stay within the supported years."""

from __future__ import annotations

import codecs
import datetime as dt
import json
import math

from django import forms
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import Q
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
    NumberFilter,
)
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, parsers, serializers
from rest_framework.utils.serializer_helpers import BindingDict

from clinic.models import User

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


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(NumberFilter):
    """An object's id in a query (`?patient=42`): a whole number a database id can be, documented
    as an integer (a generated client sends an int, not a float); `1.5` or `1e99` is a 400."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


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
