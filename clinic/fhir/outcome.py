"""FHIR errors: every error under /fhir/R4/ is an OperationOutcome served as
`application/fhir+json` (R4 http.html#response), never the REST API's error body.

The REST machinery still decides the status and the messages (`clinic.api.conventions.
exception_handler`: field errors, 404 for other clinics' rows, 429, 503); this module only
rewrites that body. Each field error becomes an issue that says where it is:

- a query parameter or header: `location` = `http.<name>` (R4 OperationOutcome.issue.location:
  "http." + the name for what is not in the resource);
- an element of the posted resource: `expression` = a FHIRPath (`Patient.name[0].family`).

Nothing here imports the REST API's modules: `clinic.api.conventions.not_found` uses it for an
unrouted URL under /fhir/.
"""

from __future__ import annotations

from django.http import JsonResponse

FHIR_JSON = "application/fhir+json"

# HTTP status -> OperationOutcome.issue.code (R4 valueset issue-type).
ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "multiple-matches",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    429: "throttled",
    503: "transient",
}
NON_FIELD = "non_field_errors"


def issue(*, code: str, diagnostics: str, severity: str = "error", location: str = "", expression: str = "") -> dict:
    """One OperationOutcome issue in the JSON form fhir.resources serialises (no empty fields)."""
    found: dict = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if location:
        found["location"] = [location]
    if expression:
        found["expression"] = [expression]
    return found


def operation_outcome(issues: list[dict]) -> dict:
    return {"resourceType": "OperationOutcome", "issue": issues}


def _messages(value) -> list[str]:
    if isinstance(value, dict):  # a nested serializer's errors: flatten with their own names
        return [f"{key}: {message}" for key, inner in value.items() for message in _messages(inner)]
    if isinstance(value, list):
        return [message for item in value for message in _messages(item)]
    return [str(value)]


def where(name: str, *, resource_type: str, query: set[str] | None, headers: set[str]) -> dict:
    """`location` or `expression` for an error keyed `name` in the REST error body. `query` is
    None for a search or read: every name is then a query parameter (given or missing)."""
    if query is None or name in query or name.lower() in headers:
        return {"location": f"http.{name}"}
    if name.startswith(f"{resource_type}."):  # already a FHIRPath into the posted resource
        return {"expression": name}
    return {"expression": f"{resource_type}.{name}"}


def outcome_from_error(
    body: dict, *, status: int, resource_type: str, query: set[str] | None, headers: set[str]
) -> dict:
    """The REST API's error body (`{"type", "title", "status", "detail", "errors"}`) as an OperationOutcome."""
    code = ISSUE_CODES.get(status, "exception" if status >= 500 else "processing")
    errors = body.get("errors") or {}
    issues = []
    for name, value in errors.items():
        if name == "conflicts":  # a booking clash: which appointment holds the time
            issues += [_clash(clash) for clash in value if isinstance(clash, dict)]
            continue
        for message in _messages(value):
            if name == NON_FIELD:
                issues.append(issue(code=code, diagnostics=message))
            else:
                located = where(name, resource_type=resource_type, query=query, headers=headers)
                issues.append(issue(code=code, diagnostics=message, **located))
    detail = str(body.get("detail") or body.get("title") or "Error.")
    said = {entry["diagnostics"] for entry in issues}
    generic = bool(issues) and detail == "One or more fields are invalid."
    if detail not in said and not generic:
        issues.insert(0, issue(code=code, diagnostics=detail))
    return operation_outcome(issues)


def _clash(clash: dict) -> dict:
    held_by = f"Appointment/{clash['appointment']}" if clash.get("appointment") else "another booking"
    what = clash.get("resource", "time")
    return issue(
        code="conflict",
        diagnostics=f"The {what} is taken by {held_by} from {clash.get('start')} to {clash.get('end')}.",
    )


def fhir_error_response(status: int, code: str, diagnostics: str) -> JsonResponse:
    """An OperationOutcome answered outside a FHIR view (a database outage in middleware)."""
    return JsonResponse(
        operation_outcome([issue(code=code, diagnostics=diagnostics)]), status=status, content_type=FHIR_JSON
    )


def fhir_not_found(request) -> JsonResponse:
    """An unrouted URL under /fhir/ (handler404): an OperationOutcome like every FHIR error."""
    body = operation_outcome([issue(code="not-found", diagnostics=f"No FHIR route matches {request.path}.")])
    return JsonResponse(body, status=404, content_type=FHIR_JSON)
