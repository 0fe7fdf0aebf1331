"""The OpenAPI document reads well for people and drives generated clients: one tag per
resource, a summary on every operation, short unique operation ids, and an example on every
JSON request and success response that validates against its own schema."""

from __future__ import annotations

import copy
import re
from collections import Counter

import jsonschema
import pytest

from tests.api.endpoints import openapi_schema

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema() -> dict:
    return openapi_schema()


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def test_one_tag_per_resource_each_described_in_the_tag_list(schema):
    tags = Counter()
    for path, _, operation in operations(schema):
        assert len(operation["tags"]) == 1, path
        tags[operation["tags"][0]] += 1
    # No catch-all tag: the largest holds one resource's operations, not the API's.
    assert "api" not in tags
    assert "fhir" not in tags
    assert max(tags.values()) <= 15, tags.most_common(3)
    assert len(tags) >= 30
    assert tags["Appointments"] >= 10
    assert tags["Patients"] >= 5
    assert [tag["name"] for tag in schema["tags"]] == sorted(tags)
    described = {tag["name"]: tag["description"] for tag in schema["tags"]}
    assert described["Appointments"].startswith("`POST /appointments/` books")


def test_every_operation_has_a_summary_and_names_what_it_needs(schema):
    for path, method, operation in operations(schema):
        summary = operation.get("summary", "")
        assert summary, (path, method)
        assert len(summary) <= 90, summary
        if path.startswith("/api/") and operation.get("security") != []:
            assert "Staff roles:" in operation.get("description", ""), (path, method)
    by_id = {op["operationId"]: op for _, _, op in operations(schema)}
    assert by_id["appointments_cancel"]["summary"] == "Cancel an appointment"
    assert by_id["appointments_list"]["summary"] == "List appointments"
    assert by_id["patients_retrieve"]["summary"] == "Get a patient"
    assert "API keys need the scope `appointments:write`" in by_id["appointments_cancel"]["description"]


def test_operation_ids_are_unique_short_and_valid_python_names(schema):
    ids = [operation["operationId"] for _, _, operation in operations(schema)]
    assert len(ids) == len(set(ids))
    for operation_id in ids:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", operation_id), operation_id
        assert not operation_id.startswith("api_v1_")
    assert {"appointments_create", "appointments_reschedule", "slots_retrieve", "fhir_patient_list"} <= set(ids)


def _json_schema(schema: dict, document: dict) -> dict:
    """OpenAPI 3.0's `nullable` as JSON Schema, with the document's components to resolve refs."""

    def convert(node):
        if isinstance(node, dict):
            node = {key: convert(value) for key, value in node.items()}
            if node.pop("nullable", False):
                if "type" in node:
                    node["type"] = [node["type"], "null"]
                elif "enum" not in node:
                    node = {"anyOf": [node, {"type": "null"}]}
                if "enum" in node and None not in node["enum"]:
                    node["enum"] = [*node["enum"], None]
            return node
        if isinstance(node, list):
            return [convert(value) for value in node]
        return node

    return {**convert(copy.deepcopy(schema)), "components": convert(copy.deepcopy(document["components"]))}


def test_every_json_body_and_success_response_has_an_example_that_fits_its_schema(schema):
    checked = 0
    for path, method, operation in operations(schema):
        bodies = list(operation.get("requestBody", {}).get("content", {}).items())
        for code, response in operation["responses"].items():
            if str(code).startswith("2"):
                bodies += list(response.get("content", {}).items())
        for media_type, media in bodies:
            if "json" not in media_type:
                continue
            assert "example" in media, (path, method, media_type)
            if path.startswith("/api/") and "schema" in media:
                jsonschema.validate(media["example"], _json_schema(media["schema"], schema))
                checked += 1
    assert checked >= 100


def test_examples_read_like_a_clinic_in_its_own_time(schema):
    booking = schema["paths"]["/api/v1/appointments/"]["post"]["requestBody"]["content"]["application/json"]
    assert booking["example"]["start"] == "2026-12-07T10:00:00-05:00"
    assert booking["example"]["hours_override"] is False
    patient = schema["paths"]["/api/v1/patients/{id}/"]["get"]["responses"]["200"]["content"]["application/json"]
    assert patient["example"]["given_name"] == "Maya"
    assert patient["example"]["mobile_phone"] == "+14165550123"
