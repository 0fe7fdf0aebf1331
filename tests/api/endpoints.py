"""Every API endpoint, found by walking the URL resolver, for the generated tests.

An endpoint is one URL pattern under /api/v1/ or /fhir/R4/ and the view behind it; for a DRF
viewset route, `actions` maps HTTP methods to viewset actions (`{"get": "list", "post": "create"}`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.factories import API_OBJECT_FACTORIES, API_ROUTE_KWARGS, API_ROUTE_QUERY

API_PREFIXES = ("api/v1/", "fhir/R4/")
WRITE_METHODS = ("post", "put", "patch", "delete")


@dataclass(frozen=True)
class Endpoint:
    name: str  # namespaced URL name, for reverse()
    route: str
    view_class: type
    actions: dict = field(default_factory=dict, hash=False, compare=False)
    detail_kwarg: str | None = None
    # URL kwargs after the object's own (a nested route): built from the object by API_ROUTE_KWARGS.
    nested_kwargs: Callable | None = field(default=None, hash=False, compare=False)
    # The query a GET needs (GET /slots/ requires ?service=&start=&end=), built from the object.
    query: Callable | None = field(default=None, hash=False, compare=False)

    def __str__(self) -> str:
        return f"/{self.route}"

    @property
    def is_detail(self) -> bool:
        return self.detail_kwarg is not None

    @property
    def is_list(self) -> bool:
        return self.actions.get("get") == "list"

    @property
    def model(self):
        queryset = getattr(self.view_class, "queryset", None)
        model = queryset.model if queryset is not None else getattr(self.view_class, "isolation_model", None)
        assert model is not None, (
            f"{self}: {self.view_class.__name__} declares neither `queryset` nor `isolation_model`, "
            "so the isolation matrix cannot tell which objects it serves."
        )
        return model

    @property
    def methods(self) -> list[str]:
        if self.actions:
            return list(self.actions)
        return [m for m in ("get", *WRITE_METHODS) if hasattr(self.view_class, m)]

    def url(self, obj=None) -> str:
        kwargs = {}
        if self.is_detail:
            # The object's own kwarg is its lookup field (`code` for catalogs), else its pk
            # (`patient_id` of /pain-series/{patient_id}/ is the patient's pk).
            lookup = getattr(self.view_class, "lookup_field", "pk")
            own = self.detail_kwarg in (lookup, getattr(self.view_class, "lookup_url_kwarg", None))
            kwargs[self.detail_kwarg] = getattr(obj, lookup) if own else obj.pk
        if self.nested_kwargs is not None:
            kwargs.update(self.nested_kwargs(obj))
        url = reverse(self.name, kwargs=kwargs)
        if self.query is not None and obj is not None:
            url += "?" + urlencode(self.query(obj))
        return url


def _walk(patterns, prefix: str, namespace: str):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), f"{namespace}{pattern.name}", pattern


def api_endpoints() -> list[Endpoint]:
    found = []
    for route, name, pattern in _walk(get_resolver().url_patterns, "", ""):
        if not route.startswith(API_PREFIXES):
            continue
        callback = pattern.callback
        view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        assert view_class is not None, f"/{route}: not a class-based API view; the generated tests cannot cover it."
        groups = list(pattern.pattern.regex.groupindex)
        nested = API_ROUTE_KWARGS.get(name)
        assert len(groups) <= 1 or nested is not None, (
            f"/{route}: nested URL kwargs {groups}; add a function building {groups[1:]} from the object "
            f"to tests/factories.py API_ROUTE_KWARGS under {name!r}."
        )
        found.append(
            Endpoint(
                name=name,
                route=re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route).replace("^", "").replace("$", ""),
                view_class=view_class,
                actions=dict(getattr(callback, "actions", None) or {}),
                detail_kwarg=groups[0] if groups else None,
                nested_kwargs=nested,
                query=API_ROUTE_QUERY.get(name),
            )
        )
    return found


def make(model, clinic):
    factory = API_OBJECT_FACTORIES.get(model)
    assert factory is not None, (
        f"No factory for {model._meta.label} in tests/factories.py API_OBJECT_FACTORIES: "
        "add one so the isolation matrix, query budgets and bad-input tests cover its endpoints."
    )
    return factory(clinic)


def make_ids_unmistakable() -> dict:
    """Move every project table's id sequence far ahead and return where each now starts.

    Objects created next get ids that cannot coincide with ids created before (the other
    clinic's) or with ordinary numbers (counts, page sizes) in a response body.
    """
    starts = {}
    with connection.cursor() as cursor:
        for model in _project_models():
            if model._meta.pk.get_internal_type() != "BigAutoField":
                continue
            cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [model._meta.db_table, model._meta.pk.column])
            (sequence,) = cursor.fetchone()
            if sequence:
                cursor.execute("SELECT setval(%s, nextval(%s) + 7000000000)", [sequence, sequence])
                starts[model] = cursor.fetchone()[0] + 1
    return starts


def ids_created_since(starts: dict) -> set[int]:
    ids: set[int] = set()
    for model, first in starts.items():
        ids |= set(model._base_manager.filter(pk__gte=first).values_list("pk", flat=True))
    return ids


def _project_models() -> set:
    from django.apps import apps

    project = {"clinic", "patients", "intake", "treatment_sessions", "treatments", "outcomes"}
    return {m for m in apps.get_models() if m._meta.app_label in project}


def foreign_ids_in(body: str, ids: set[int]) -> list[int]:
    return sorted(i for i in ids if re.search(rf"(?<![0-9]){i}(?![0-9])", body))


def filterset_of(endpoint: Endpoint):
    """The FilterSet the project's filter backend builds for the endpoint's view (declared, or
    generated from `filterset_fields`), or None."""
    from clinic.api.inputs import StrictFilterBackend

    queryset = getattr(endpoint.view_class, "queryset", None)
    return StrictFilterBackend().get_filterset_class(endpoint.view_class(), queryset)


def route_shape(route: str) -> str:
    """`/api/v1/appointments/{id}/history/` (OpenAPI) and `api/v1/appointments/{pk}/history/` alike."""
    return "/" + re.sub(r"\{[^}]+\}|<[^>]+>", "{}", route).lstrip("/")


def openapi_schema() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def request_properties(schema: dict, endpoint: Endpoint, method: str) -> dict | None:
    """The writable properties of the operation's documented JSON body ({name: property schema}),
    or None when the operation documents no body."""
    paths = {route_shape(path): item for path, item in schema["paths"].items()}
    operation = paths.get(route_shape(endpoint.route), {}).get(method)
    assert operation is not None, f"{method.upper()} {endpoint} is served but not in the OpenAPI schema"
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is None:
        return None

    def resolve(node: dict) -> dict:
        while "$ref" in node:
            node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
        return node

    properties = resolve(body["schema"]).get("properties", {})
    return {name: resolve(prop) for name, prop in properties.items() if not resolve(prop).get("readOnly")}
