"""FHIR R4 export: a questionnaire version as a Questionnaire, a submission as a QuestionnaireResponse;
and their read API at /fhir/R4/Questionnaire and /fhir/R4/QuestionnaireResponse.

Plain dicts in FHIR JSON form (`clinic.fhir.base.compact`: no None, no empty list); tests validate
them with `fhir.resources` (R4B models). A body-map question becomes a repeating group of two
choices, region and side.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Q
from django_filters import rest_framework as filters

from clinic.fhir.base import ClinicalFhirMixin, FhirDateFilter, FhirViewSet, compact, fhir_datetime, fhir_schema
from clinic.security.roles import ALL_ROLES
from intake.definition import Condition, Question, QuestionType, body_regions
from intake.models import IntakeSubmission, Questionnaire, QuestionnaireStatus
from treatments.models import Side

FHIR_STATUS = {
    QuestionnaireStatus.DRAFT: "draft",
    QuestionnaireStatus.PUBLISHED: "active",
    QuestionnaireStatus.RETIRED: "retired",
}
ITEM_TYPE = {
    QuestionType.YES_NO: "boolean",
    QuestionType.SINGLE_CHOICE: "choice",
    QuestionType.MULTI_CHOICE: "choice",
    QuestionType.SCALE: "integer",
    QuestionType.NUMBER: "decimal",
    QuestionType.SHORT_TEXT: "string",
    QuestionType.LONG_TEXT: "text",
    QuestionType.DATE: "date",
    QuestionType.BODY_MAP: "group",
}
EXT_MIN = "http://hl7.org/fhir/StructureDefinition/minValue"
EXT_MAX = "http://hl7.org/fhir/StructureDefinition/maxValue"


def canonical_url(questionnaire: Questionnaire) -> str:
    return f"{settings.PUBLIC_BASE_URL}/fhir/Questionnaire/{questionnaire.code}"


def _system(form_code: str, question_code: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}/fhir/CodeSystem/{form_code}/{question_code}"


def _region_system() -> str:
    return f"{settings.PUBLIC_BASE_URL}/fhir/CodeSystem/body-region"


def _side_system() -> str:
    return f"{settings.PUBLIC_BASE_URL}/fhir/CodeSystem/laterality"


def _enable_when(condition: Condition, questions: dict[str, Question], form_code: str) -> dict:
    parent = questions[condition.question]
    if condition.operator == "answered":
        return {"question": parent.code, "operator": "exists", "answerBoolean": True}
    if condition.operator == "at_least":
        return {"question": parent.code, "operator": ">=", "answerInteger": int(condition.value)}
    if parent.type == QuestionType.YES_NO:
        return {"question": parent.code, "operator": "=", "answerBoolean": bool(condition.value)}
    if parent.type == QuestionType.BODY_MAP:
        return {
            "question": f"{parent.code}.region",
            "operator": "=",
            "answerCoding": {"system": _region_system(), "code": condition.value},
        }
    return {
        "question": parent.code,
        "operator": "=",
        "answerCoding": {"system": _system(form_code, parent.code), "code": str(condition.value)},
    }


def _item(question: Question, questions: dict[str, Question], form_code: str) -> dict:
    item: dict = {"linkId": question.code, "text": question.text, "type": ITEM_TYPE[question.type]}
    if question.required:
        item["required"] = True
    if question.type in (QuestionType.SINGLE_CHOICE, QuestionType.MULTI_CHOICE):
        system = _system(form_code, question.code)
        item["answerOption"] = [{"valueCoding": {"system": system, "code": o.code, "display": o.label}}
                                for o in question.options]  # fmt: skip
        item["repeats"] = question.type == QuestionType.MULTI_CHOICE
    if question.type == QuestionType.SCALE:
        item["extension"] = [{"url": EXT_MIN, "valueInteger": 0}, {"url": EXT_MAX, "valueInteger": 10}]
    if question.type == QuestionType.NUMBER:
        bounds = [(EXT_MIN, question.minimum), (EXT_MAX, question.maximum)]
        item["extension"] = [{"url": url, "valueDecimal": value} for url, value in bounds if value is not None]
    if question.type in (QuestionType.SHORT_TEXT, QuestionType.LONG_TEXT) and question.max_length:
        item["maxLength"] = question.max_length
    if question.type == QuestionType.BODY_MAP:
        names = body_regions()
        item["repeats"] = True
        item["item"] = [
            {
                "linkId": f"{question.code}.region",
                "text": "Region",
                "type": "choice",
                "required": True,
                "answerOption": [
                    {"valueCoding": {"system": _region_system(), "code": r, "display": names[r]}}
                    for r in question.regions
                ],
            },
            {
                "linkId": f"{question.code}.side",
                "text": "Side",
                "type": "choice",
                "required": True,
                "answerOption": [
                    {"valueCoding": {"system": _side_system(), "code": value, "display": label}}
                    for value, label in Side.choices
                ],
            },
        ]
    if question.enable_when:
        item["enableWhen"] = [_enable_when(c, questions, form_code) for c in question.enable_when]
        if len(question.enable_when) > 1:
            item["enableBehavior"] = "any"
    ordered = {key: item[key] for key in _ITEM_KEYS if key in item}
    return ordered | item


# The R4 element order, which fhir.resources writes too: the same bytes as validating it gave.
_ITEM_KEYS = ("extension", "linkId", "text", "type", "enableWhen", "enableBehavior", "required", "repeats",
              "maxLength", "answerOption", "item")  # fmt: skip


def questionnaire_to_fhir(questionnaire: Questionnaire) -> dict:
    form = questionnaire.form
    resource = {
        "resourceType": "Questionnaire",
        "id": f"{questionnaire.code}-v{questionnaire.version}",
        "url": canonical_url(questionnaire),
        "version": str(questionnaire.version),
        "name": "".join(part.capitalize() for part in questionnaire.code.replace("-", "_").split("_")),
        "title": questionnaire.title,
        "status": FHIR_STATUS[QuestionnaireStatus(questionnaire.status)],
        "subjectType": ["Patient"],
        "date": fhir_datetime(questionnaire.published_at) if questionnaire.published_at else None,
        "description": form.description or questionnaire.title,
        "item": [
            {
                "linkId": section.code,
                "text": section.title,
                "type": "group",
                "item": [_item(q, form.questions, form.code) for q in section.questions],
            }
            for section in form.sections
        ],
    }
    return compact(resource)


def _answers(question: Question, value, form_code: str) -> list[dict]:
    if question.type == QuestionType.YES_NO:
        return [{"valueBoolean": bool(value)}]
    if question.type in (QuestionType.SINGLE_CHOICE, QuestionType.MULTI_CHOICE):
        system = _system(form_code, question.code)
        codes = value if isinstance(value, list) else [value]
        return [{"valueCoding": {"system": system, "code": c, "display": question.option_label(c)}} for c in codes]
    if question.type == QuestionType.SCALE:
        return [{"valueInteger": int(value)}]
    if question.type == QuestionType.NUMBER:
        return [{"valueDecimal": value}]
    if question.type == QuestionType.DATE:
        return [{"valueDate": dt.date.fromisoformat(value).isoformat()}]
    return [{"valueString": str(value)}]


def submission_to_fhir(submission: IntakeSubmission) -> dict:
    questionnaire = submission.questionnaire
    form = questionnaire.form
    names = body_regions()
    groups = []
    for section in form.sections:
        items = []
        for question in section.questions:
            if question.code not in submission.answers:
                continue
            value = submission.answers[question.code]
            if question.type == QuestionType.BODY_MAP:
                for entry in value:
                    region = {"system": _region_system(), "code": entry["region"], "display": names[entry["region"]]}
                    side = {"system": _side_system(), "code": entry["side"], "display": Side(entry["side"]).label}
                    items.append(
                        {
                            "linkId": question.code,
                            "text": question.text,
                            "item": [
                                {"linkId": f"{question.code}.region", "answer": [{"valueCoding": region}]},
                                {"linkId": f"{question.code}.side", "answer": [{"valueCoding": side}]},
                            ],
                        }
                    )
                continue
            items.append(
                {"linkId": question.code, "text": question.text, "answer": _answers(question, value, form.code)}
            )
        if items:
            groups.append({"linkId": section.code, "text": section.title, "item": items})
    return compact(
        {
            "resourceType": "QuestionnaireResponse",
            "id": f"intake-submission-{submission.pk}",
            "questionnaire": f"{canonical_url(questionnaire)}|{questionnaire.version}",
            "status": "completed",
            "subject": {"reference": f"Patient/{submission.patient_id}", "display": submission.patient.full_name},
            "authored": fhir_datetime(submission.submitted_at),
            "item": groups,
        }
    )


# --- /fhir/R4/Questionnaire and /fhir/R4/QuestionnaireResponse ---------------------------------


def questionnaire_resource(questionnaire: Questionnaire) -> dict:
    """The Questionnaire as served at /fhir/R4/Questionnaire/<id>: the id is the row's (the REST
    read needs it); `url` and `version` still name the canonical version."""
    return questionnaire_to_fhir(questionnaire) | {"id": str(questionnaire.pk)}


def submission_resource(submission: IntakeSubmission) -> dict:
    return submission_to_fhir(submission) | {"id": str(submission.pk)}


class QuestionnaireSearch(filters.FilterSet):
    name = filters.CharFilter(field_name="code", lookup_expr="iexact")
    version = filters.NumberFilter(field_name="version")
    status = filters.ChoiceFilter(method="filter_status", choices=[(v, v) for v in FHIR_STATUS.values()])

    class Meta:
        model = Questionnaire
        fields: list[str] = []

    def filter_status(self, qs, name, value):
        return qs.filter(status__in=[ours for ours, theirs in FHIR_STATUS.items() if theirs == value])


@fhir_schema("Questionnaire")
class FhirQuestionnaireViewSet(FhirViewSet):
    """FHIR R4 Questionnaire: the intake forms this clinic uses (its own and the shared ones)."""

    allowed_roles = ALL_ROLES
    api_scope = "intake"
    queryset = Questionnaire.objects.all()
    filterset_class = QuestionnaireSearch
    to_fhir = staticmethod(questionnaire_resource)

    def get_queryset(self):
        # Not ClinicScopedMixin's filter: shared questionnaires (no clinic) belong to everyone.
        return Questionnaire.objects.filter(Q(clinic=self.request.clinic) | Q(clinic__isnull=True))


class QuestionnaireResponseSearch(filters.FilterSet):
    patient = filters.NumberFilter(field_name="patient_id")
    subject = filters.NumberFilter(field_name="patient_id")
    authored = FhirDateFilter(field_name="submitted_at")

    class Meta:
        model = IntakeSubmission
        fields: list[str] = []


@fhir_schema("QuestionnaireResponse")
class FhirQuestionnaireResponseViewSet(ClinicalFhirMixin, FhirViewSet):
    """FHIR R4 QuestionnaireResponse: a submitted intake (clinical content)."""

    api_scope = "intake"
    queryset = IntakeSubmission.objects.select_related("questionnaire", "patient")
    filterset_class = QuestionnaireResponseSearch
    to_fhir = staticmethod(submission_resource)
