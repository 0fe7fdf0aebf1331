"""fhir.resources (R4B) as the validator of the FHIR JSON the app builds by hand.

The app serves plain dicts (no pydantic model per request); tests prove them valid here.
`assert_valid_fhir` goes one step further than validating: the resource must already be in the
form its model serialises to (`model_dump(mode="json", exclude_none=True)`): no `None`, no empty
list, UTC date-times with `Z`. So what is served is exactly what building the resource with
fhir.resources would have served. A Bundle is checked with every resource in it.
"""

from __future__ import annotations

from fhir.resources.R4B import get_fhir_model_class


def _first_difference(expected, actual, path: str = "") -> str:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual)):
            if key not in actual:
                return f"{path}.{key}: missing, fhir.resources has {expected[key]!r}"
            if key not in expected:
                return f"{path}.{key}: {actual[key]!r}, dropped by fhir.resources (None or empty?)"
            if expected[key] != actual[key]:
                return _first_difference(expected[key], actual[key], f"{path}.{key}")
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            if left != right:
                return _first_difference(left, right, f"{path}[{index}]")
    return f"{path}: served {actual!r}, fhir.resources has {expected!r}"


def assert_valid_fhir(resource: dict, resource_type: str | None = None) -> None:
    """The resource (or Bundle) validates against its R4B model and is already in that model's JSON form."""
    if resource_type is not None:
        assert resource.get("resourceType") == resource_type, resource.get("resourceType")
    model = get_fhir_model_class(resource["resourceType"])
    dumped = model.model_validate(resource).model_dump(mode="json", exclude_none=True)
    assert dumped == resource, _first_difference(dumped, resource, resource["resourceType"])
