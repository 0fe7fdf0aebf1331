"""OpenAPI descriptions that drf-spectacular cannot infer: API-key auth, the error format on
every operation (an OperationOutcome under /fhir/) (and the server's own 414 for an over-long request line), and the
`Idempotency-Key` header on views that honour it."""

from __future__ import annotations

import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import get_doc, get_view_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from clinic.api.conventions import required_scope
from clinic.security.roles import ALL_ROLES


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "clinic.api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key of one clinic (`manage.py create_api_key`): `Authorization: Bearer <key>`.",
        }


# What a standard viewset action does, as the first word of its summary.
REST_VERBS = {
    "list": "List", "retrieve": "Get", "create": "Create", "update": "Replace",
    "partial_update": "Update", "destroy": "Delete",
}  # fmt: skip
FHIR_VERBS = {"list": "Search", "retrieve": "Read", "create": "Create", "update": "Update", "destroy": "Delete"}
# Path segments that group resources rather than name one.
NAMESPACES = {"catalogs"}
ACRONYMS = {"api": "API", "art": "ART", "fhir": "FHIR"}
# Custom actions whose name is a noun, not a verb: how their summary reads ({a} = "a"/"an").
ACTION_PHRASES = {
    "history": "History of {a} {one}",
    "fhir": "{A} {one} as a FHIR resource",
    "addenda": "Add an addendum to {a} {one}",
    "entries": "Add an entry to {a} {one}",
    "entries:delete": "Delete an entry of {a} {one}",
    "export": "Export {a} {one}",
    "no-show": "Mark {a} {one} as a no-show",
    "check-in": "Check in {a} {one}",
    "series": "Book a weekly series of appointments",
    "slots": "Find free slots",
    "pain-series": "Pain before and after each session of a patient",
}


def _words(text: str) -> str:
    return " ".join(ACRONYMS.get(word, word) for word in text.replace("-", " ").split())


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def resource_of(path: str) -> tuple[str, list[str]]:
    """('api' | 'fhir' | other, the path's words without its prefix and parameters);
    `catalogs/muscles` counts as one word."""
    words = [w for w in re.sub(r"\{[\w\-]+\}", "", path).strip("/").split("/") if w]
    if words[:2] == ["api", "v1"]:
        family, words = "api", words[2:]
    elif words[:2] == ["fhir", "R4"]:
        family, words = "fhir", words[2:]
    else:
        family = words[0] if words else "root"
    if words and words[0] in NAMESPACES and len(words) > 1:
        words = [f"{words[0]}/{words[1]}", *words[2:]]
    return family, words or ["root"]


def resource_tag(path: str) -> str:
    """One tag per resource: `Appointments`, `Catalogs: muscles`, `FHIR Patient`."""
    family, words = resource_of(path)
    if family == "fhir":
        return f"FHIR {words[0]}"
    namespace, _, name = words[0].rpartition("/")
    if namespace:
        return f"{namespace.capitalize()}: {_words(name)}"
    label = _words(name)
    return label[:1].upper() + label[1:]


class ClinicAutoSchema(AutoSchema):
    """Operations named for people and generated clients: one tag per resource, a summary on
    every operation, short unique operation ids (`appointments_cancel`, `fhir_patient_list`)."""

    def get_tags(self):
        return [resource_tag(self.path)]

    def get_operation_id(self):
        family, words = resource_of(self.path)
        action = getattr(self.view, "action", None)
        if action is None:
            listing = self.method == "GET" and self._is_list_view()
            action = "list" if listing else self.method_mapping[self.method.lower()]
        if len(words) > 1 and self.method in ("GET", "POST"):
            # A custom action (`/appointments/{id}/cancel/`): its words say what it does.
            action = None
        elif len(words) > 1:
            action = self.method_mapping[self.method.lower()]
        tokens = [w.replace("-", "_").replace("/", "_").lower() for w in words]
        prefix = ["fhir"] if family == "fhir" else [] if family == "api" else [family]
        return "_".join(prefix + tokens + ([action] if action else []))

    def get_summary(self):
        summary = super().get_summary()
        if summary:
            return summary
        family, words = resource_of(self.path)
        action = getattr(self.view, "action", None)
        if family == "fhir":
            verb = FHIR_VERBS.get(action) or (action or self.method).replace("_", " ").capitalize()
            return f"{verb} {words[0]}"
        model = get_view_model(self.view, emit_warnings=False)
        noun = _words(words[0].rpartition("/")[2])
        one = _words(str(model._meta.verbose_name)) if model else noun.removesuffix("s")
        if action in REST_VERBS and len(words) == 1:
            if action == "list":
                return f"List {_words(str(model._meta.verbose_name_plural)) if model else noun}"
            return f"{REST_VERBS[action]} {_article(one)} {one}"
        last = words[-1]
        phrase = ACTION_PHRASES.get(f"{last}:{self.method.lower()}") or ACTION_PHRASES.get(last)
        if phrase is None:
            phrase = f"{_words(last).capitalize()} {{a}} {{one}}"
        article = _article(one)
        return phrase.format(a=article, A=article.capitalize(), one=one)

    def get_auth(self):
        auth = super().get_auth()
        if not getattr(self.view, "api_keys_allowed", True):
            auth = [scheme for scheme in auth if "apiKey" not in scheme]
        return auth

    def get_description(self):
        description = super().get_description() or ""
        roles = getattr(self.view, "allowed_roles", ALL_ROLES)
        if self.method not in ("GET", "HEAD", "OPTIONS"):
            roles = getattr(self.view, "write_roles", roles)
        who = f"Staff roles: {', '.join(sorted(str(role) for role in roles))}."
        if getattr(self.view, "api_keys_allowed", True):
            request = type("ScopeProbe", (), {"method": self.method})()
            who += f" API keys need the scope `{required_scope(self.view, request)}`."
        else:
            who += " Not available to API keys."
        return f"{description}\n\n{who}".strip()

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if getattr(self.view, "action", None) in getattr(self.view, "idempotent_actions", ()):
            parameters.append(
                OpenApiParameter(
                    "Idempotency-Key",
                    OpenApiTypes.STR,
                    OpenApiParameter.HEADER,
                    description=(
                        "Retry-safe creation: a retry with the same key (per API key or user, kept 24 h) "
                        "replays the first response; the same key with a different body is 422; a retry "
                        "while the first request runs is 409."
                    ),
                )
            )
        return parameters


ERROR_SCHEMA = {
    "type": "object",
    "description": 'Every error: RFC 9457 fields plus `errors`, the field errors (`{"field": ["message"]}`).',
    "properties": {
        "type": {"type": "string", "example": "about:blank"},
        "title": {"type": "string", "example": "Invalid request"},
        "status": {"type": "integer", "example": 400},
        "detail": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {}}},
    },
    "required": ["type", "title", "status", "detail", "errors"],
}

# Under /fhir/ every error is an OperationOutcome (clinic/fhir/outcome.py), as FHIR JSON.
OPERATION_OUTCOME_SCHEMA = {
    "type": "object",
    "description": "A FHIR R4 OperationOutcome: each issue says what (`code`, `diagnostics`) and where "
    "(`location`: `http.<query parameter or header>`; `expression`: a FHIRPath into the posted resource).",
    "properties": {
        "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
        "issue": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "severity": {"type": "string"},
                    "code": {"type": "string"},
                    "diagnostics": {"type": "string"},
                    "location": {"type": "array", "items": {"type": "string"}},
                    "expression": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["severity", "code"],
            },
        },
    },
    "required": ["resourceType", "issue"],
}

_DESCRIPTIONS = {
    "400": "Invalid input: bad field values, unknown fields or query parameters, malformed JSON.",
    "401": "No credentials, or an unknown or revoked API key.",
    "403": "The role or the API key's scopes do not allow this.",
    "404": "No such object in the caller's clinic.",
    "406": "FHIR: `Accept` or `_format` asks for something other than JSON (served as application/fhir+json).",
    "409": "Conflicts with the current state (or the same Idempotency-Key is still being processed).",
    "412": "FHIR conditional create: the If-None-Exist search matches more than one resource.",
    "413": "The request body is larger than the limit.",
    "415": "The request body is not JSON.",
    "422": "The Idempotency-Key was already used for a different request.",
    "429": "Rate limit reached; retry after the number of seconds in `Retry-After`.",
    "503": "The database is unavailable; retry after the number of seconds in `Retry-After`.",
}


# Answered by gunicorn before the request reaches Django, so in its own HTML, not the Error format.
REQUEST_LINE_TOO_LONG = {
    "description": (
        "The request line (method, path and query string) is longer than the server reads "
        "(gunicorn's `limit_request_line`, 4094 bytes). Sent by the server, not the API: "
        "an HTML page, not the error format. Shorten the query (fewer or shorter filter values)."
    ),
    "content": {"text/html": {"schema": {"type": "string"}}},
}


def _error_codes(path: str, method: str, operation: dict) -> list[str]:
    codes = ["400", "401", "403", "429", "503"]
    if "{" in path:
        codes.append("404")
    if path.startswith("/fhir/"):
        codes.append("406")
    if method in {"post", "put", "patch", "delete"}:
        codes.append("409")
    if "requestBody" in operation:
        codes += ["413", "415"]
    if any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", [])):
        codes.append("422")
    if any(p.get("name") == "If-None-Exist" for p in operation.get("parameters", [])):
        codes.append("412")
    if path == "/fhir/R4/metadata":  # public and computed: no credentials, no rows, no rate limit
        codes = ["406"]
    return codes


def share_request_bodies(result, generator, request, public):
    """drf-spectacular postprocessing hook: a body offered in several media types
    (`application/fhir+json` and `application/json`) as one named component, not one inline copy
    per type. Generated clients make a model per inline schema and refuse two of the same name."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for item in result.get("paths", {}).values():
        for operation in item.values():
            content = operation.get("requestBody", {}).get("content", {}) if isinstance(operation, dict) else {}
            inline = [media["schema"] for media in content.values() if "$ref" not in media.get("schema", {"$ref": ""})]
            if len(content) < 2 or not inline:
                continue
            name = "".join(part.capitalize() for part in operation["operationId"].split("_")) + "Body"
            schemas[name] = inline[0]
            for media in content.values():
                if media.get("schema") == inline[0]:
                    media["schema"] = {"$ref": f"#/components/schemas/{name}"}
    return result


def add_tags(result, generator, request, public):
    """drf-spectacular postprocessing hook: the tags in order, each described by its view's docstring."""
    described: dict[str, str] = {}
    for path, _, _, view in getattr(generator, "endpoints", None) or []:
        doc = get_doc(getattr(view, "cls", view))
        described.setdefault(resource_tag(path), doc.split("\n\n")[0].replace("\n", " ") if doc else "")
    operations = [op for item in result.get("paths", {}).values() for op in item.values() if isinstance(op, dict)]
    used = sorted({tag for operation in operations for tag in operation.get("tags", [])})
    result["tags"] = [{"name": tag, "description": described.get(tag, "")} for tag in used]
    return result


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: the Error component on every operation's error codes."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas["OperationOutcome"] = OPERATION_OUTCOME_SCHEMA
    rest = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    fhir = {"application/fhir+json": {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for code in _error_codes(path, method, operation):
                content = fhir if path.startswith("/fhir/") else rest
                response = {"description": _DESCRIPTIONS[code], "content": content}
                if code in {"429", "503"}:
                    response["headers"] = {
                        "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
                    }
                responses.setdefault(code, response)
            responses.setdefault("414", REQUEST_LINE_TOO_LONG)
    return result
