"""An example on every operation's JSON request and success response, built from the schema.

drf-spectacular only emits examples it is given; writing one by hand for 120 operations would
drift from the serializers at the first change. Instead each example is derived from the
component it illustrates: realistic values for the field names this API uses (a Toronto clinic,
times with their offset), the first choice of an enum, the format's shape otherwise. So an
example always has every field its schema names and validates against it
(tests/api/test_openapi_docs.py checks both).
"""

from __future__ import annotations

from typing import Any

# A visit next week at 10:00 in a UTC−5 clinic: what a front-desk integration sends and reads.
START = "2026-12-07T10:00:00-05:00"
END = "2026-12-07T10:45:00-05:00"
MOMENT = "2026-12-03T14:30:00Z"

BY_NAME: dict[str, Any] = {
    "given_name": "Maya",
    "family_name": "Singh",
    "preferred_name": "Maya",
    "display_name": "Dana Lee, RMT",
    "signature_name": "Dana Lee, RMT",
    "email": "maya.singh@example.com",
    "mobile_phone": "+14165550123",
    "phone": "+14165550123",
    "emergency_contact_name": "Arjun Singh",
    "emergency_contact_phone": "+14165550188",
    "birth_date": "1984-03-27",
    "date_of_birth": "1984-03-27",
    "address_line1": "120 King Street West",
    "address_line2": "Suite 400",
    "city": "Toronto",
    "region": "ON",
    "postal_code": "M5H 1J9",
    "country": "CA",
    "time_zone": "America/Toronto",
    "start": START,
    "new_start": START,
    "old_start": "2026-12-04T15:30:00-05:00",
    "end": END,
    "window_start": START,
    "window_end": "2026-12-07T17:00:00-05:00",
    "reason": "Patient has the flu",
    "cancellation_reason": "Patient has the flu",
    "subjective": "Left calf tight after running; 6/10 at worst.",
    "objective": "Trigger point in left gastrocnemius, medial head.",
    "assessment": "Calf strain, improving.",
    "plan": "ART to the calf; review in one week.",
    "url": "https://hooks.example.com/clinic",
    "scopes": "appointments:read,appointments:write",
    "registration_body": "CMTO",
    "registration_number": "R-12345",
    "ip_address": "203.0.113.7",
    "user_agent": "FrontDesk/2.1",
    "event_type": "appointment.created",
    "date_format": "%Y-%m-%d",
    "csv": "First Name,Surname,Email\nMaya,Singh,maya.singh@example.com\n",
    "name": "Downtown",
}
# Integer fields naming another object: the id of that object in the clinic.
INTEGER_BY_NAME = {"id": 42, "patient": 42, "patient_id": 42, "practitioner": 7, "service": 3, "room": 2, "location": 1}
BY_FORMAT = {
    "date-time": MOMENT,
    "date": "2026-12-07",
    "time": "10:00:00",
    "email": "maya.singh@example.com",
    "uri": "https://clinic.example/api/v1/appointments/?cursor=cD0yMDI2",
    "uuid": "3f2c1b9e-7a4d-4c2e-9b1a-5d6e7f8a9b0c",
    "decimal": "85.00",
    "ipv4": "203.0.113.7",
}
MAX_DEPTH = 6


def _resolve(schema: dict, components: dict) -> dict:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def example_for(schema: dict, components: dict, *, name: str = "", direction: str = "response", depth: int = 0):
    """A value that fits `schema`; `direction` drops readOnly fields from requests and
    writeOnly ones from responses."""
    schema = _resolve(schema, components)
    if "example" in schema:
        return schema["example"]
    if "enum" in schema:
        return next((value for value in schema["enum"] if value not in (None, "")), schema["enum"][0])
    for combinator in ("allOf", "oneOf", "anyOf"):
        if schema.get(combinator):
            parts = [_resolve(part, components) for part in schema[combinator]]
            if combinator == "allOf" and len(parts) > 1:
                merged: dict = {"type": "object", "properties": {}, "required": []}
                for part in parts:
                    merged["properties"].update(part.get("properties", {}))
                return example_for(merged, components, name=name, direction=direction, depth=depth)
            usable = [part for part in parts if part.get("type") != "null" and part.get("enum") != [None]]
            return example_for((usable or parts)[0], components, name=name, direction=direction, depth=depth)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth >= MAX_DEPTH:
            return {}
        skip = "readOnly" if direction == "request" else "writeOnly"
        return {
            field: example_for(sub, components, name=field, direction=direction, depth=depth + 1)
            for field, sub in schema.get("properties", {}).items()
            if not _resolve(sub, components).get(skip)
        }
    if kind == "array":
        if depth >= MAX_DEPTH:
            return []
        item = example_for(schema.get("items", {}), components, name=name, direction=direction, depth=depth + 1)
        return [item]
    if kind == "integer":
        value = INTEGER_BY_NAME.get(name, 1)
        return max(value, schema.get("minimum", value))
    if kind == "number":
        return max(1.5, schema.get("minimum", 1.5))
    if kind == "boolean":
        return schema.get("default", name.endswith("_consent"))
    if kind == "string":
        return _string(schema, name)
    return {}


def _string(schema: dict, name: str) -> str:
    value = BY_NAME.get(name) or BY_FORMAT.get(schema.get("format", ""))
    if value is None:
        value = "example_code" if "pattern" in schema else name.replace("_", " ").capitalize() or "Example"
    if "maxLength" in schema:
        value = value[: schema["maxLength"]]
    if len(value) < schema.get("minLength", 0):
        value = value.ljust(schema["minLength"], "x")
    return value


def _fhir_example(path: str, operation: dict) -> dict:
    resource = path.split("/")[3] if path.count("/") >= 3 else "Resource"
    one = {"resourceType": resource, "id": "42"}
    if "{id}" in path or operation.get("operationId", "").endswith(("create", "update")):
        return one
    if resource == "metadata":
        return {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance", "fhirVersion": "4.0.1"}
    return {"resourceType": "Bundle", "type": "searchset", "total": 1, "entry": [{"resource": one}]}


def add_examples(result, generator, request, public):
    """drf-spectacular postprocessing hook: an example on every JSON request body and 2xx response."""
    components = result.get("components", {}).get("schemas", {})
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            bodies = [("request", media) for media in operation.get("requestBody", {}).get("content", {}).items()]
            for code, response in operation.get("responses", {}).items():
                if str(code).startswith("2"):
                    bodies += [("response", media) for media in response.get("content", {}).items()]
            for direction, (media_type, media) in bodies:
                if "example" in media or "examples" in media or "json" not in media_type:
                    continue
                if path.startswith("/fhir/"):
                    media["example"] = _fhir_example(path, operation)
                elif "schema" in media:
                    media["example"] = example_for(media["schema"], components, direction=direction)
    return result
