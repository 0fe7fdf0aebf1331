"""Questionnaire files are schema-checked: on load (file, line and problem) and here, in make test."""

from __future__ import annotations

import html
import re

import pytest
import yaml
from django.core.management import CommandError, call_command

from intake import catalogs
from intake.catalogs import DATA_DIR, read_definition
from intake.definition import DefinitionError, QuestionType, parse_form
from intake.models import IntakeLink, Questionnaire
from intake.schema import DefinitionFileError, definition_problems, read_checked
from intake.services import questionnaire_publish
from tests.factories import PatientFactory, intake_link

SHIPPED = sorted(path.name for path in DATA_DIR.glob("*.yaml"))

GOOD = """\
code: t
title: T
sections:
  - code: s
    questions:
      - code: onset_how
        type: single_choice
        text: How did it start?
        options:
          - {code: injury, label: "Suddenly, with an injury"}
          - {code: gradual, label: Gradually}
      - code: details
        type: long_text
        text: Tell us more
        enable_when: [{question: onset_how, equals: injury}]
screening:
  - code: r
    severity: info
    title: R
    when: {question: onset_how, equals: injury}
"""


def write(tmp_path, text: str, name: str = "form.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_well_formed_file_passes_the_check(tmp_path):
    definition = read_checked(write(tmp_path, GOOD))
    assert definition["sections"][0]["questions"][0]["options"][0]["label"] == "Suddenly, with an injury"


def test_an_unquoted_comma_in_a_label_is_refused_with_the_file_and_line(tmp_path):
    path = write(tmp_path, GOOD.replace('label: "Suddenly, with an injury"', "label: Suddenly, with an injury"))
    with pytest.raises(DefinitionFileError) as caught:
        read_checked(path)
    assert "form.yaml:10: option 'injury' has an unexpected key 'with an injury'" in str(caught.value)
    assert "quoted" in str(caught.value)


@pytest.mark.parametrize(
    ("change", "line", "problem"),
    [
        (("label: Gradually", "label: {text: Gradually}"), 11, "option 'gradual' needs a text label"),
        (("label: Gradually", "label: Yes"), 11, "needs a text label (got True)"),
        (("code: gradual", "code: injury"), 11, "option code 'injury' is used twice"),
        (("label: Gradually", 'label: "Suddenly, with an injury"'), 11,
         "label 'Suddenly, with an injury' is used twice"),
        (("{question: onset_how, equals: injury}]", "{question: onset, equals: injury}]"), 15,
         "condition names no question 'onset'"),
        (("[{question: onset_how, equals: injury}]", "[{question: onset_how, equals: slowly}]"), 15,
         "'onset_how' has no option 'slowly'"),
        (("when: {question: onset_how, equals: injury}", "when: {question: onset_how, includes: crash}"), 20,
         "'onset_how' has no option 'crash'"),
        (("when: {question: onset_how, equals: injury}", "when: {question: pain, equals: true}"), 20,
         "condition names no question 'pain'"),
    ],
)  # fmt: skip
def test_a_malformed_definition_names_the_line_and_the_problem(tmp_path, change, line, problem):
    old, new = change
    assert old in GOOD
    with pytest.raises(DefinitionFileError) as caught:
        read_checked(write(tmp_path, GOOD.replace(old, new, 1)))
    first = str(caught.value).splitlines()[0]
    assert first.startswith(f"form.yaml:{line}: ")
    assert problem in first


def test_a_yes_no_condition_compared_with_anything_but_true_or_false_is_refused():
    definition = {
        "code": "t",
        "sections": [{"code": "s", "questions": [{"code": "q", "type": "yes_no", "text": "Q?"}]}],
        "screening": [{"code": "r", "severity": "info", "title": "R", "when": {"question": "q", "equals": "yes"}}],
    }
    [problem] = definition_problems(definition)
    assert problem.path == ("screening", 0, "when")
    assert "compare with true or false" in problem.message


@pytest.mark.django_db
def test_load_catalogs_stops_on_a_malformed_file_and_publishes_nothing(tmp_path, monkeypatch):
    write(tmp_path, GOOD, "a_good.yaml")
    write(tmp_path, GOOD.replace("code: t\n", "code: u\n").replace('"Suddenly, with an injury"', "Suddenly, hurt"),
          "b_bad.yaml")  # fmt: skip
    monkeypatch.setattr(catalogs, "DATA_DIR", tmp_path)
    with pytest.raises(CommandError) as caught:
        call_command("load_catalogs")
    assert "b_bad.yaml:10: option 'injury' has an unexpected key 'hurt'" in str(caught.value)
    assert not Questionnaire.objects.filter(code__in=["t", "u"]).exists()


@pytest.mark.django_db
def test_publishing_a_malformed_definition_is_refused():
    definition = yaml.safe_load(GOOD.replace('"Suddenly, with an injury"', "Suddenly, with an injury"))
    with pytest.raises(DefinitionError, match="unexpected key 'with an injury'"):
        questionnaire_publish(definition=definition)
    assert not Questionnaire.objects.filter(code="t").exists()


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_questionnaire_passes_the_schema_check(name):
    definition = read_definition(name)
    assert definition_problems(definition) == []
    parse_form(definition)


def _file_options(name: str) -> list[tuple[str, str]]:
    """(code, label) of every option as written in the file's text, read without YAML."""
    text = (DATA_DIR / name).read_text(encoding="utf-8")
    found = re.findall(r"^\s*- \{code: ([^,]+), label: (.*)\}\s*$", text, flags=re.MULTILINE)
    return [(code, label[1:-1] if label.startswith('"') and label.endswith('"') else label) for code, label in found]


def _enabling_answers(section) -> dict:
    """Draft answers under which `section` is asked (its first question's first condition holds)."""
    question = next((q for q in section.questions if q.enable_when), None)
    if question is None or section.is_enabled({}):
        return {}
    condition = question.enable_when[0]
    value = condition.value if condition.operator != "answered" else True
    return {condition.question: [value] if condition.operator == "includes" else value}


@pytest.mark.django_db
@pytest.mark.parametrize("name", SHIPPED)
def test_every_option_of_every_shipped_questionnaire_shows_the_label_written_in_its_file(client, name):
    questionnaire = questionnaire_publish(definition=read_definition(name))[0]
    form = questionnaire.form
    link = intake_link(PatientFactory(), questionnaire=questionnaire)
    rendered: list[tuple[str, str]] = []
    for section in form.sections:
        IntakeLink.objects.filter(pk=link.pk).update(draft_answers=_enabling_answers(section))
        response = client.get(f"/intake/{link.token}/s/{section.code}/")
        assert response.status_code == 200, section.code
        body = response.content.decode()
        for question in section.questions:
            if question.type not in (QuestionType.SINGLE_CHOICE, QuestionType.MULTI_CHOICE):
                continue
            for option in question.options:
                match = re.search(rf'id="q-{question.code}-{option.code}"[^>]*><span>(.*?)</span>', body)
                assert match, (question.code, option.code)
                rendered.append((option.code, html.unescape(match.group(1))))
    assert rendered == _file_options(name)
