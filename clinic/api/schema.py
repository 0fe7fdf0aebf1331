"""OpenAPI descriptions that drf-spectacular cannot infer: API-key auth, the error format on
every operation (an OperationOutcome under /fhir/) (and the server's own 414 for an over-long request line), and the
`Idempotency-Key` header on views that honour it."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
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


class ClinicAutoSchema(AutoSchema):
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
