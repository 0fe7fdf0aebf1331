"""FHIR R4 for outcome responses: a QuestionnaireResponse with the answers and, when scored, an
Observation with the score (LOINC where a code exists, else the clinic's local code system).

Served at /api/v1/outcome-responses/{id}/fhir/ as a `collection` Bundle of the two: /fhir/R4/
QuestionnaireResponse and Observation are intake's and sessions' searches, and the R4 REST
routes have no room for a second kind of row under one resource type.
"""

from __future__ import annotations

from django.conf import settings

from clinic.fhir.base import compact, fhir_datetime
from outcomes.models import OutcomeResponse, ResponseStatus


def _system(name: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}/fhir/CodeSystem/{name}"


def _items(response: OutcomeResponse) -> list[dict]:
    answers = response.answers
    if "activities" in answers:
        return [
            {
                "linkId": f"activity_{n}",
                "item": [
                    {"linkId": f"activity_{n}.name", "answer": [{"valueString": row["name"]}] if row["name"] else []},
                    {"linkId": f"activity_{n}.rating",
                     "answer": [{"valueInteger": row["rating"]}] if row["rating"] is not None else []},
                ],
            }
            for n, row in enumerate(answers["activities"], start=1)
        ]  # fmt: skip
    return [
        {"linkId": code, "answer": [{"valueInteger": value}] if value is not None else []}
        for code, value in answers.items()
    ]


def response_to_fhir(response: OutcomeResponse) -> dict:
    measure = response.definition
    return compact(
        {
            "resourceType": "QuestionnaireResponse",
            "id": f"outcome-{response.pk}",
            "questionnaire": f"{settings.PUBLIC_BASE_URL}/fhir/Questionnaire/outcome-{measure.code}"
            f"|{response.measure_version}",
            # "stopped": partially filled out and not finished (FHIR's name for our incomplete).
            "status": "completed" if response.status == ResponseStatus.COMPLETE else "stopped",
            "subject": {"reference": f"Patient/{response.patient_id}"},
            "authored": fhir_datetime(response.recorded_at),
            "item": _items(response),
        }
    )


def score_to_fhir(response: OutcomeResponse) -> dict | None:
    if response.score is None:
        return None
    measure = response.definition
    coding = [{"system": _system("outcome-measure"), "code": measure.code, "display": measure.title}]
    if measure.loinc:
        coding.insert(
            0, {"system": "http://loinc.org", "code": measure.loinc["code"], "display": measure.loinc["display"]}
        )
    return compact(
        {
            "resourceType": "Observation",
            "id": f"outcome-score-{response.pk}",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "survey",
                            "display": "Survey",
                        }
                    ]
                }
            ],  # fmt: skip
            "code": {"coding": coding, "text": measure.title},
            "subject": {"reference": f"Patient/{response.patient_id}"},
            "effectiveDateTime": response.recorded_on.isoformat(),
            "issued": fhir_datetime(response.recorded_at),
            "valueQuantity": {
                "value": float(response.score),
                "unit": "score",
                "system": "http://unitsofmeasure.org",
                "code": "{score}",
            },  # fmt: skip
            "derivedFrom": [{"reference": f"QuestionnaireResponse/outcome-{response.pk}"}],
        }
    )


def response_bundle(response: OutcomeResponse) -> dict:
    resources = [response_to_fhir(response)]
    observation = score_to_fhir(response)
    if observation is not None:
        resources.append(observation)
    base = f"{settings.PUBLIC_BASE_URL}/fhir/R4"
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources],
    }
