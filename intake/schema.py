"""The schema check of a questionnaire definition, with the file and line of each problem.

`parse_form` catches what stops a form from working at all; this check catches what
makes it ask the wrong thing while still working, the mistakes YAML lets through
silently. The classic one: `{code: injury, label: Suddenly, with an injury}` is read
as the label "Suddenly" plus a key "with an injury", so the patient sees "Suddenly".

- every option is a mapping of exactly `code` and `label`, both non-empty text;
- option codes and labels are unique within a question;
- every `enable_when` and screening condition names an existing question, and its
  value is one that question can take (an option code, a region, yes/no, a number);
- `exclusive`, `side_from` and `regions_from` name existing options and questions.

`definition_problems` works on plain data and returns (path, message) pairs;
`read_checked` reads a YAML file keeping the nodes, so each path gets its line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from intake.definition import CONDITION_OPERATORS, DefinitionError, QuestionType

OPTION_KEYS = {"code", "label"}
CHOICE_TYPES = (QuestionType.SINGLE_CHOICE, QuestionType.MULTI_CHOICE)


@dataclass(frozen=True)
class Problem:
    path: tuple
    message: str


class DefinitionFileError(DefinitionError):
    """A questionnaire file fails the schema check; the message names the file, line and problem."""


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _option_problems(question: dict, path: tuple) -> list[Problem]:
    problems: list[Problem] = []
    options = question.get("options")
    if options is None:
        return problems
    if not isinstance(options, list):
        return [Problem(path + ("options",), "options must be a list")]
    codes: set[str] = set()
    labels: set[str] = set()
    for index, option in enumerate(options):
        where = path + ("options", index)
        if not isinstance(option, dict):
            problems.append(Problem(where, "an option is a mapping with a code and a label"))
            continue
        for key in option:
            if key not in OPTION_KEYS:
                problems.append(
                    Problem(
                        where + (key,),
                        f"option {option.get('code')!r} has an unexpected key {key!r}: "
                        "a label containing a comma or colon must be quoted",
                    )
                )
        code, label = option.get("code"), option.get("label")
        if not _is_text(code):
            problems.append(Problem(where + ("code",), f"option code {code!r} must be text"))
        elif code in codes:
            problems.append(Problem(where + ("code",), f"option code {code!r} is used twice"))
        else:
            codes.add(code)
        if not _is_text(label):
            problems.append(
                Problem(where + ("label",), f"option {code!r} needs a text label (got {label!r}); quote it")
            )
        elif label in labels:
            problems.append(Problem(where + ("label",), f"option label {label!r} is used twice"))
        else:
            labels.add(label)
    for index, code in enumerate(question.get("exclusive") or ()):
        if code not in codes:
            problems.append(Problem(path + ("exclusive", index), f"exclusive names no option {code!r}"))
    return problems


def _value_problem(condition: dict, question: dict | None) -> str:
    """Why a condition can never hold for `question`, or ""."""
    if question is None:
        return f"names no question {condition.get('question')!r}"
    operators = [op for op in CONDITION_OPERATORS if op in condition]
    if len(operators) != 1:
        return f"needs exactly one of {', '.join(CONDITION_OPERATORS)}"
    operator, value = operators[0], condition[operators[0]]
    qtype = question.get("type")
    codes = [o.get("code") for o in question.get("options") or () if isinstance(o, dict)]
    if operator == "answered":
        return ""
    if operator == "at_least":
        ok = qtype in (QuestionType.SCALE, QuestionType.NUMBER) and isinstance(value, int | float)
        return "" if ok else f"at_least needs a number question and a number (question {question.get('code')!r})"
    if qtype == QuestionType.YES_NO:
        return "" if isinstance(value, bool) else f"{question.get('code')!r} is yes/no: compare with true or false"
    if qtype in CHOICE_TYPES and value not in codes:
        return f"{question.get('code')!r} has no option {value!r}"
    if qtype == QuestionType.BODY_MAP and value not in (question.get("regions") or ()):
        return f"{question.get('code')!r} has no region {value!r}"
    return ""


def _condition_problems(node: Any, known: dict[str, dict], path: tuple) -> list[Problem]:
    if isinstance(node, dict) and ("any" in node or "all" in node):
        key = "any" if "any" in node else "all"
        children = node[key]
        if not isinstance(children, list) or not children:
            return [Problem(path + (key,), "any/all need a non-empty list")]
        return [p for i, child in enumerate(children) for p in _condition_problems(child, known, path + (key, i))]
    if not isinstance(node, dict) or "question" not in node:
        return [Problem(path, "a condition needs 'question' and a test")]
    problem = _value_problem(node, known.get(node.get("question")))
    return [Problem(path, f"condition {problem}")] if problem else []


def definition_problems(definition: Any) -> list[Problem]:
    """Every schema problem in a definition (plain data), in file order."""
    if not isinstance(definition, dict):
        return [Problem((), "a definition is a mapping")]
    problems: list[Problem] = []
    known: dict[str, dict] = {}
    for s_index, section in enumerate(definition.get("sections") or []):
        if not isinstance(section, dict):
            problems.append(Problem(("sections", s_index), "a section is a mapping"))
            continue
        for q_index, question in enumerate(section.get("questions") or []):
            path = ("sections", s_index, "questions", q_index)
            if not isinstance(question, dict):
                problems.append(Problem(path, "a question is a mapping"))
                continue
            problems += _option_problems(question, path)
            for c_index, condition in enumerate(question.get("enable_when") or ()):
                problems += _condition_problems(condition, known, path + ("enable_when", c_index))
            if isinstance(question.get("code"), str):
                known[question["code"]] = question
    for r_index, rule in enumerate(definition.get("screening") or []):
        path = ("screening", r_index)
        if not isinstance(rule, dict):
            problems.append(Problem(path, "a screening rule is a mapping"))
            continue
        problems += _condition_problems(rule.get("when"), known, path + ("when",))
        for key in ("side_from", "regions_from"):
            if rule.get(key) and rule[key] not in known:
                problems.append(Problem(path + (key,), f"{key} names no question {rule[key]!r}"))
    return problems


def check_definition(definition: Any) -> None:
    """Raise DefinitionError naming the first schema problem (for definitions without a file)."""
    problems = definition_problems(definition)
    if problems:
        where = ".".join(str(p) for p in problems[0].path)
        raise DefinitionError(f"{where}: {problems[0].message}" if where else problems[0].message)


def _line(node: yaml.Node, path: tuple) -> int:
    """The 1-based line of the deepest node `path` reaches (the key's line for the last key)."""
    for index, step in enumerate(path):
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == step), None)
            if match is None:
                break
            node = match[0] if index == len(path) - 1 else match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
        else:
            break
    return node.start_mark.line + 1


def read_checked(path: Path) -> dict:
    """Read a questionnaire file and check it; DefinitionFileError says `file:line: problem`."""
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise DefinitionFileError(f"{path.name}: not valid YAML: {exc}") from None
    if root is None:
        raise DefinitionFileError(f"{path.name}:1: the file is empty")
    definition = yaml.safe_load(text)
    problems = definition_problems(definition)
    if problems:
        lines = [f"{path.name}:{_line(root, p.path)}: {p.message}" for p in problems]
        raise DefinitionFileError("\n".join(lines))
    return definition
