"""Questionnaires as data: parse a definition, decide which questions apply, clean answers.

A definition (stored in `Questionnaire.definition`, written as YAML in
`intake/catalog_data/`) looks like:

    code: leg-knee-back
    title: Leg, knee and back pain
    sections:
      - code: pain
        title: Where it hurts
        questions:
          - {code: pain_regions, type: body_map, text: Where do you feel pain?, required: true,
             regions: [lower_back, knee, calf]}
          - {code: pain_radiates, type: yes_no, text: Does the pain travel down your leg?}
          - {code: sciatica_symptoms, type: multi_choice, text: ..., options: [...],
             enable_when: [{question: pain_radiates, equals: true}]}
    screening:
      - {code: pregnancy, severity: caution, title: ..., when: {question: conditions, includes: pregnancy}}

A question with `enable_when` is asked only when any of its conditions holds, and
conditions may only look at earlier questions. Answers are plain JSON: a boolean
(yes/no), an option code, a list of option codes, an integer (scale), a number, a
string, an ISO date, or a list of `{"region", "side"}` (body map).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from treatments.catalogs import read_catalog
from treatments.models import Side


class QuestionType(models.TextChoices):
    YES_NO = "yes_no", "Yes / no"
    SINGLE_CHOICE = "single_choice", "Single choice"
    MULTI_CHOICE = "multi_choice", "Multiple choice"
    SCALE = "scale", "0-10 scale"
    NUMBER = "number", "Number"
    SHORT_TEXT = "short_text", "Short text"
    LONG_TEXT = "long_text", "Long text"
    DATE = "date", "Date"
    BODY_MAP = "body_map", "Body-region map"


SEVERITIES = ("urgent", "caution", "info")
SHORT_TEXT_MAX = 200
LONG_TEXT_MAX = 4000
REQUIRED_MESSAGE = "Please answer this question."


class DefinitionError(ValueError):
    """The definition itself is wrong (a form author's mistake, caught before publishing)."""


@cache
def body_regions() -> dict[str, str]:
    """Region code -> name, from treatments/catalog_data/body_regions.yaml."""
    return {row["code"]: row["name"] for row in read_catalog("body_regions.yaml")}


@dataclass(frozen=True)
class Option:
    code: str
    label: str


@dataclass(frozen=True)
class Condition:
    """One test on an earlier answer: equals, includes (a choice in a list), at_least, answered."""

    question: str
    operator: str
    value: Any = None

    def holds(self, answers: dict) -> bool:
        answer = answers.get(self.question)
        if answer is None or answer == [] or answer == "":
            return False
        if self.operator == "answered":
            return True
        if self.operator == "equals":
            return answer == self.value
        if self.operator == "includes":
            if isinstance(answer, list):
                return any(item == self.value or (isinstance(item, dict) and item.get("region") == self.value)
                           for item in answer)  # fmt: skip
            return answer == self.value
        if self.operator == "at_least":
            return isinstance(answer, int | float) and answer >= self.value
        raise DefinitionError(f"unknown operator {self.operator!r}")


CONDITION_OPERATORS = ("equals", "includes", "at_least", "answered")


def parse_condition(raw: dict, where: str) -> Condition:
    if not isinstance(raw, dict) or "question" not in raw:
        raise DefinitionError(f"{where}: a condition needs 'question' and one of {', '.join(CONDITION_OPERATORS)}")
    operators = [op for op in CONDITION_OPERATORS if op in raw]
    if len(operators) != 1:
        raise DefinitionError(f"{where}: a condition needs exactly one of {', '.join(CONDITION_OPERATORS)}")
    return Condition(question=raw["question"], operator=operators[0], value=raw[operators[0]])


@dataclass(frozen=True)
class Question:
    code: str
    type: QuestionType
    text: str
    help: str = ""
    required: bool = False
    options: tuple[Option, ...] = ()
    exclusive: tuple[str, ...] = ()  # option codes that cannot be combined with others ("none of these")
    minimum: float | None = None
    maximum: float | None = None
    min_label: str = ""
    max_label: str = ""
    max_length: int | None = None
    regions: tuple[str, ...] = ()
    past_only: bool = False
    must_be_yes: bool = False
    enable_when: tuple[Condition, ...] = ()
    # Staff-facing: where a list or wording comes from (a book, a source document). Never shown
    # to the patient, who reads plain words; the admin's outline of the form shows it.
    source: str = ""

    def option_label(self, code: str) -> str:
        return next((o.label for o in self.options if o.code == code), code)

    def is_enabled(self, answers: dict) -> bool:
        return not self.enable_when or any(c.holds(answers) for c in self.enable_when)

    def display(self, value: Any) -> str:
        """The answer as a person reads it (admin summary, flag reasons, FHIR text)."""
        if value is None or value == [] or value == "":
            return "—"
        if self.type == QuestionType.YES_NO:
            return "Yes" if value else "No"
        if self.type == QuestionType.SINGLE_CHOICE:
            return self.option_label(value)
        if self.type == QuestionType.MULTI_CHOICE:
            return "; ".join(self.option_label(v) for v in value)
        if self.type == QuestionType.SCALE:
            return f"{value}/10"
        if self.type == QuestionType.BODY_MAP:
            names = body_regions()
            return "; ".join(f"{names.get(e['region'], e['region'])} ({Side(e['side']).label.lower()})" for e in value)
        if self.type == QuestionType.DATE:
            return dt.date.fromisoformat(value).strftime("%d %b %Y")
        return str(value)

    # --- answer cleaning ----------------------------------------------------------------

    def clean(self, raw: Any) -> Any:
        """A well-formed answer as stored, or ValidationError with a message for the patient."""
        cleaner = getattr(self, f"_clean_{self.type}")
        return cleaner(raw)

    def _clean_yes_no(self, raw):
        if isinstance(raw, bool):
            value = raw
        elif isinstance(raw, str) and raw.lower() in ("yes", "true"):
            value = True
        elif isinstance(raw, str) and raw.lower() in ("no", "false"):
            value = False
        else:
            raise ValidationError("Choose yes or no.")
        if self.must_be_yes and not value:
            raise ValidationError("You need to agree to continue.")
        return value

    def _clean_single_choice(self, raw):
        if not isinstance(raw, str) or raw not in {o.code for o in self.options}:
            raise ValidationError("Choose one of the options shown.")
        return raw

    def _clean_multi_choice(self, raw):
        if isinstance(raw, str):
            raw = [raw]
        codes = [o.code for o in self.options]
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
            raise ValidationError("Choose from the options shown.")
        unknown = [v for v in raw if v not in codes]
        if unknown:
            raise ValidationError("Choose from the options shown.")
        chosen = [c for c in codes if c in raw]  # definition order, no repeats
        if len(chosen) > 1 and any(c in self.exclusive for c in chosen):
            label = self.option_label(next(c for c in chosen if c in self.exclusive))
            raise ValidationError(f"“{label}” can't be combined with other answers.")
        return chosen

    def _number(self, raw, *, whole: bool):
        if isinstance(raw, bool) or raw is None:
            raise ValidationError("Enter a number.")
        try:
            number = Decimal(str(raw).strip())
        except InvalidOperation:
            raise ValidationError("Enter a number.") from None
        if not number.is_finite():
            raise ValidationError("Enter a number.")
        if whole and number != number.to_integral_value():
            raise ValidationError("Enter a whole number.")
        if self.minimum is not None and number < Decimal(str(self.minimum)):
            raise ValidationError(f"Enter a number of at least {self.minimum:g}.")
        if self.maximum is not None and number > Decimal(str(self.maximum)):
            raise ValidationError(f"Enter a number no more than {self.maximum:g}.")
        return number

    def _clean_scale(self, raw):
        number = self._number(raw, whole=True)
        if not 0 <= number <= 10:
            raise ValidationError("Choose a number from 0 to 10.")
        return int(number)

    def _clean_number(self, raw):
        number = self._number(raw, whole=False)
        return int(number) if number == number.to_integral_value() else float(number)

    def _text(self, raw, limit: int):
        if not isinstance(raw, str):
            raise ValidationError("Enter text.")
        value = raw.strip()
        if "\x00" in value:
            raise ValidationError("Enter text without control characters.")
        if len(value) > limit:
            raise ValidationError(f"Keep this to {limit} characters or fewer (it has {len(value)}).")
        return value

    def _clean_short_text(self, raw):
        return self._text(raw, self.max_length or SHORT_TEXT_MAX)

    def _clean_long_text(self, raw):
        return self._text(raw, self.max_length or LONG_TEXT_MAX)

    def _clean_date(self, raw):
        if not isinstance(raw, str):
            raise ValidationError("Enter a date like 2025-03-31.")
        try:
            value = dt.date.fromisoformat(raw.strip())
        except ValueError:
            raise ValidationError("Enter a real date like 2025-03-31.") from None
        if value.year < 1900:
            raise ValidationError("Enter a date after 1900.")
        if self.past_only and value > timezone.localdate():
            raise ValidationError("This date can't be in the future.")
        return value.isoformat()

    def _clean_body_map(self, raw):
        if not isinstance(raw, list):
            raise ValidationError("Choose the areas where you feel it, and the side.")
        entries: dict[str, str] = {}
        for item in raw:
            if not isinstance(item, dict) or set(item) - {"region", "side"}:
                raise ValidationError("Each area needs a region and a side.")
            region, side = item.get("region"), item.get("side")
            if region not in self.regions:
                raise ValidationError("Choose areas from the list shown.")
            if side not in Side.values:
                raise ValidationError(f"Choose left, right or both for {body_regions()[region].lower()}.")
            if region in entries:
                raise ValidationError(f"{body_regions()[region]} is listed twice.")
            entries[region] = side
        return [{"region": r, "side": entries[r]} for r in self.regions if r in entries]


@dataclass(frozen=True)
class Section:
    code: str
    title: str
    intro: str
    questions: tuple[Question, ...]

    def is_enabled(self, answers: dict) -> bool:
        return any(q.is_enabled(answers) for q in self.questions)


@dataclass(frozen=True)
class Rule:
    """A screening rule: when `when` holds, raise a flag (see intake/screening.py)."""

    code: str
    severity: str
    title: str
    reason: str
    when: dict
    region: str = ""
    side: str = ""
    side_from: str = ""
    regions_from: str = ""


@dataclass(frozen=True)
class Form:
    code: str
    title: str
    description: str
    sections: tuple[Section, ...]
    rules: tuple[Rule, ...]
    questions: dict[str, Question] = field(default_factory=dict)

    def section(self, code: str) -> Section | None:
        return next((s for s in self.sections if s.code == code), None)

    def enabled_sections(self, answers: dict) -> list[Section]:
        return [s for s in self.sections if s.is_enabled(answers)]

    def clean(self, raw: dict, *, sections: list[Section] | None = None, context: dict | None = None,
              complete: bool = True) -> dict:  # fmt: skip
        """Clean the answers to `sections` (all by default); raise ValidationError({code: [msg]}).

        `context` holds answers to other sections, for `enable_when`. Answers to
        questions that don't apply (their condition is false) are dropped, never stored.
        With `complete=False` (save and finish later) required questions may be blank.
        """
        if not isinstance(raw, dict):
            raise ValidationError({"answers": ["Send the answers as an object keyed by question code."]})
        wanted = sections if sections is not None else list(self.sections)
        codes = {q.code for s in wanted for q in s.questions}
        errors: dict[str, list[str]] = {
            code: ["Not a question of this form."] for code in raw if code not in codes
        }  # fmt: skip
        known = dict(context or {})
        cleaned: dict[str, Any] = {}
        for section in wanted:
            for question in section.questions:
                known.pop(question.code, None)
                if not question.is_enabled(known):
                    continue
                value = raw.get(question.code)
                if value is None or value == "" or value == []:
                    if question.required and complete:
                        errors[question.code] = [REQUIRED_MESSAGE]
                    continue
                try:
                    cleaned[question.code] = known[question.code] = question.clean(value)
                except ValidationError as exc:
                    errors[question.code] = exc.messages
        if errors:
            raise ValidationError(errors)
        return cleaned

    def summary(self, answers: dict) -> list[dict]:
        """Sections with the questions that were asked and their answers, for people to read."""
        result = []
        for section in self.sections:
            rows = [
                {"code": q.code, "question": q.text, "answer": q.display(answers.get(q.code))}
                for q in section.questions
                if q.code in answers
            ]
            if rows:
                result.append({"code": section.code, "title": section.title, "answers": rows})
        return result


def _question(raw: dict, seen: dict[str, Question], where: str) -> Question:
    if not isinstance(raw, dict):
        raise DefinitionError(f"{where}: a question is a mapping")
    code = raw.get("code")
    if not code or not isinstance(code, str) or not code.replace("_", "").isalnum():
        raise DefinitionError(f"{where}: question code {code!r} must be letters, digits and underscores")
    where = f"{where}.{code}"
    if code in seen:
        raise DefinitionError(f"{where}: duplicate question code")
    try:
        qtype = QuestionType(raw.get("type"))
    except ValueError:
        raise DefinitionError(f"{where}: unknown type {raw.get('type')!r}") from None
    options = tuple(Option(str(o["code"]), str(o["label"])) for o in raw.get("options", []))
    is_choice = qtype in (QuestionType.SINGLE_CHOICE, QuestionType.MULTI_CHOICE)
    if is_choice and (not options or len({o.code for o in options}) != len(options)):
        raise DefinitionError(f"{where}: choice questions need options with distinct codes")
    exclusive = tuple(raw.get("exclusive", ()))
    if any(code not in {o.code for o in options} for code in exclusive):
        raise DefinitionError(f"{where}: exclusive names an option that does not exist")
    regions = tuple(raw.get("regions", ()))
    if qtype == QuestionType.BODY_MAP:
        unknown = [r for r in regions if r not in body_regions()]
        if not regions or unknown:
            raise DefinitionError(f"{where}: body maps need regions from body_regions.yaml (unknown: {unknown})")
    conditions = tuple(parse_condition(c, where) for c in raw.get("enable_when", ()))
    for condition in conditions:
        if condition.question not in seen:
            raise DefinitionError(f"{where}: enable_when must refer to an earlier question ({condition.question})")
    return Question(
        code=code,
        type=qtype,
        text=str(raw.get("text") or ""),
        help=str(raw.get("help") or ""),
        required=bool(raw.get("required", False)),
        options=options,
        exclusive=exclusive,
        minimum=raw.get("min"),
        maximum=raw.get("max"),
        min_label=str(raw.get("min_label") or ""),
        max_label=str(raw.get("max_label") or ""),
        max_length=raw.get("max_length"),
        regions=regions,
        past_only=bool(raw.get("past_only", False)),
        must_be_yes=bool(raw.get("must_be_yes", False)),
        enable_when=conditions,
        source=str(raw.get("source") or ""),
    )


def _check_rule_condition(node: Any, questions: dict[str, Question], where: str) -> None:
    if isinstance(node, dict) and ("any" in node or "all" in node):
        children = node.get("any", node.get("all"))
        if not isinstance(children, list) or not children:
            raise DefinitionError(f"{where}: any/all need a non-empty list")
        for child in children:
            _check_rule_condition(child, questions, where)
        return
    condition = parse_condition(node, where)
    if condition.question not in questions:
        raise DefinitionError(f"{where}: unknown question {condition.question!r}")


def parse_form(definition: dict) -> Form:
    """Parse and check a definition; DefinitionError names the first problem."""
    if not isinstance(definition, dict):
        raise DefinitionError("a definition is a mapping")
    questions: dict[str, Question] = {}
    sections = []
    section_codes = set()
    for index, raw_section in enumerate(definition.get("sections") or []):
        code = raw_section.get("code") or ""
        where = f"sections[{index}] {code}"
        if not code or code in section_codes:
            raise DefinitionError(f"{where}: sections need distinct codes")
        section_codes.add(code)
        items = []
        for raw_question in raw_section.get("questions") or []:
            question = _question(raw_question, questions, where)
            questions[question.code] = question
            items.append(question)
        if not items:
            raise DefinitionError(f"{where}: a section needs questions")
        sections.append(Section(code, str(raw_section.get("title") or code), str(raw_section.get("intro") or ""),
                                tuple(items)))  # fmt: skip
    if not sections:
        raise DefinitionError("a definition needs at least one section")
    rules = []
    for raw_rule in definition.get("screening") or []:
        code = raw_rule.get("code") or ""
        where = f"screening {code}"
        if raw_rule.get("severity") not in SEVERITIES:
            raise DefinitionError(f"{where}: severity must be one of {SEVERITIES}")
        _check_rule_condition(raw_rule.get("when"), questions, where)
        rule = Rule(
            code=code,
            severity=raw_rule["severity"],
            title=str(raw_rule.get("title") or ""),
            reason=str(raw_rule.get("reason") or ""),
            when=raw_rule["when"],
            region=raw_rule.get("region") or "",
            side=raw_rule.get("side") or "",
            side_from=raw_rule.get("side_from") or "",
            regions_from=raw_rule.get("regions_from") or "",
        )
        if not rule.code or not rule.title:
            raise DefinitionError(f"{where}: rules need a code and a title")
        if rule.region and rule.region not in body_regions():
            raise DefinitionError(f"{where}: unknown region {rule.region!r}")
        for ref in (rule.side_from, rule.regions_from):
            if ref and ref not in questions:
                raise DefinitionError(f"{where}: unknown question {ref!r}")
        rules.append(rule)
    return Form(
        code=str(definition.get("code") or ""),
        title=str(definition.get("title") or ""),
        description=str(definition.get("description") or ""),
        sections=tuple(sections),
        rules=tuple(rules),
        questions=questions,
    )
