"""Screening: turn a submission's answers into flags, by the rules in its questionnaire.

The rules are data (the `screening:` list of the definition, parsed into
`intake.definition.Rule`), so a clinic reads and versions them with the form.
A rule's `when` is a condition tree:

    {any: [...]} | {all: [...]} | {question: code, equals|includes|at_least|answered: value}

and its place on the body comes from `regions_from` (a body-map question: one flag
per region and side answered), else `region` with the side from `side_from` (a
single-choice question answered left/right/both) or `side`.
"""

from __future__ import annotations

from dataclasses import dataclass

from intake.definition import Form, Rule, parse_condition
from treatments.models import Side


@dataclass(frozen=True)
class Hit:
    rule: Rule
    region: str
    side: str
    reason: str


def _matches(node, answers: dict, form: Form, found: list[str]) -> bool:
    """Evaluate a condition tree; `found` collects "question: answer" for the reason text."""
    if "any" in node:
        results = [_matches(child, answers, form, found) for child in node["any"]]
        return any(results)
    if "all" in node:
        local: list[str] = []
        if all(_matches(child, answers, form, local) for child in node["all"]):
            found.extend(local)
            return True
        return False
    condition = parse_condition(node, "rule")
    if not condition.holds(answers):
        return False
    question = form.questions[condition.question]
    found.append(f"{question.text} {question.display(answers[condition.question])}")
    return True


def screen(form: Form, answers: dict) -> list[Hit]:
    """Every flag the answers raise; pure, so each rule is testable without a database."""
    hits: list[Hit] = []
    for rule in form.rules:
        found: list[str] = []
        if not _matches(rule.when, answers, form, found):
            continue
        reason = " ".join([rule.reason, "Answers: " + " / ".join(dict.fromkeys(found)) + "."]).strip()
        places: list[tuple[str, str]] = []
        if rule.regions_from:
            places = [(entry["region"], entry["side"]) for entry in answers.get(rule.regions_from) or []]
        if not places:
            side = rule.side
            if rule.side_from and answers.get(rule.side_from) in Side.values:
                side = answers[rule.side_from]
            places = [(rule.region, side)]
        hits.extend(Hit(rule=rule, region=region, side=side, reason=reason) for region, side in places)
    return hits
