"""Reading an error in either of the API's two error forms: the REST error body
(`{"type", "title", "status", "detail", "errors"}`, /api/v1/) and the FHIR OperationOutcome
(/fhir/R4/), whose issues name a query parameter or header as `location: ["http.<name>"]` and an
element of the posted resource as `expression: ["Patient.<path>"]`."""

from __future__ import annotations

from tests.fhir_validation import assert_valid_fhir

ERROR_KEYS = {"type", "title", "status", "detail", "errors"}


def _is_outcome(body) -> bool:
    return isinstance(body, dict) and body.get("resourceType") == "OperationOutcome"


def is_error(response) -> bool:
    """The response is an error in the form of its API (FHIR: a valid OperationOutcome as FHIR JSON)."""
    body = response.json()
    if _is_outcome(body):
        assert_valid_fhir(body)
        return response["Content-Type"] == "application/fhir+json" and bool(body["issue"])
    return set(body) == ERROR_KEYS and body["status"] == response.status_code


def error_fields(response) -> dict[str, list[str]]:
    """`{name: [messages]}`: the REST body's `errors`, or an OperationOutcome's issues by the
    parameter, header or element they name (`Patient.name[0].family` -> `name[0].family`)."""
    body = response.json()
    if not _is_outcome(body):
        return body.get("errors", {})
    fields: dict[str, list[str]] = {}
    for issue in body["issue"]:
        for location in issue.get("location", []):
            fields.setdefault(location.removeprefix("http."), []).append(issue["diagnostics"])
        for expression in issue.get("expression", []):
            name = expression.split(".", 1)[1] if "." in expression else expression
            fields.setdefault(name, []).append(issue["diagnostics"])
    return fields


def error_detail(response) -> str:
    body = response.json()
    if _is_outcome(body):
        return " ".join(issue["diagnostics"] for issue in body["issue"])
    return body["detail"]
