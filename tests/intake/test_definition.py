"""Questionnaires as data: every question type's validation, conditions, and definition checks."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from intake.definition import DefinitionError, parse_form


def form_with(question: dict, *, before: list[dict] | None = None):
    return parse_form(
        {"code": "t", "title": "T", "sections": [{"code": "s", "questions": [*(before or []), question]}]}
    )


def clean_one(question: dict, value):
    return form_with(question).clean({question["code"]: value})[question["code"]]


def error_of(question: dict, value, *, before=None) -> str:
    with pytest.raises(ValidationError) as caught:
        form_with(question, before=before).clean({question["code"]: value})
    return caught.value.message_dict[question["code"]][0]


YES_NO = {"code": "q", "type": "yes_no", "text": "Q?"}
OPTIONS = [{"code": "a", "label": "A"}, {"code": "b", "label": "B"}]
SINGLE = {"code": "q", "type": "single_choice", "text": "Q?", "options": OPTIONS}
MULTI = {
    **SINGLE,
    "type": "multi_choice",
    "options": [*OPTIONS, {"code": "none", "label": "None"}],
    "exclusive": ["none"],
}
SCALE = {"code": "q", "type": "scale", "text": "Q?"}
NUMBER = {"code": "q", "type": "number", "text": "Q?", "min": 0, "max": 24}
SHORT = {"code": "q", "type": "short_text", "text": "Q?", "max_length": 10}
LONG = {"code": "q", "type": "long_text", "text": "Q?"}
DATE = {"code": "q", "type": "date", "text": "Q?", "past_only": True}
BODY = {"code": "q", "type": "body_map", "text": "Q?", "regions": ["knee", "calf"]}


@pytest.mark.parametrize(
    ("question", "raw", "stored"),
    [
        (YES_NO, "yes", True), (YES_NO, "no", False), (YES_NO, True, True),
        (SINGLE, "b", "b"),
        (MULTI, ["b", "a"], ["a", "b"]), (MULTI, "a", ["a"]), (MULTI, ["none"], ["none"]),
        (SCALE, "0", 0), (SCALE, 10, 10),
        (NUMBER, "7.5", 7.5), (NUMBER, 8, 8),
        (SHORT, "  Ann  ", "Ann"), (LONG, "Line one\nline two", "Line one\nline two"),
        (DATE, "2024-02-29", "2024-02-29"),
        (BODY, [{"region": "calf", "side": "left"}, {"region": "knee", "side": "both"}],
         [{"region": "knee", "side": "both"}, {"region": "calf", "side": "left"}]),
    ],
)  # fmt: skip
def test_well_formed_answers_are_stored_in_their_plain_json_form(question, raw, stored):
    assert clean_one(question, raw) == stored


@pytest.mark.parametrize(
    ("question", "raw", "message"),
    [
        (YES_NO, "maybe", "Choose yes or no."),
        (YES_NO, 1, "Choose yes or no."),
        (SINGLE, "c", "Choose one of the options shown."),
        (SINGLE, ["a"], "Choose one of the options shown."),
        (MULTI, ["a", "zzz"], "Choose from the options shown."),
        (MULTI, {"a": 1}, "Choose from the options shown."),
        (MULTI, ["a", "none"], "“None” can't be combined with other answers."),
        (SCALE, "11", "Choose a number from 0 to 10."),
        (SCALE, "-1", "Choose a number from 0 to 10."),
        (SCALE, "4.5", "Enter a whole number."),
        (SCALE, "four", "Enter a number."),
        (SCALE, True, "Enter a number."),
        (NUMBER, "25", "Enter a number no more than 24."),
        (NUMBER, "-1", "Enter a number of at least 0."),
        (NUMBER, "NaN", "Enter a number."),
        (NUMBER, "1e999999", "Enter a number no more than 24."),
        (SHORT, "x" * 11, "Keep this to 10 characters or fewer (it has 11)."),
        (SHORT, 5, "Enter text."),
        (LONG, "bad\x00byte", "Enter text without control characters."),
        (DATE, "2023-02-29", "Enter a real date like 2025-03-31."),
        (DATE, "yesterday", "Enter a real date like 2025-03-31."),
        (DATE, "1850-01-01", "Enter a date after 1900."),
        (BODY, [{"region": "shoulder", "side": "left"}], "Choose areas from the list shown."),
        (BODY, [{"region": "knee", "side": "middle"}], "Choose left, right or both for knee."),
        (BODY, [{"region": "knee", "side": "left"}, {"region": "knee", "side": "right"}], "Knee is listed twice."),
        (BODY, [{"region": "knee", "side": "left", "extra": 1}], "Each area needs a region and a side."),
        (BODY, "knee", "Choose the areas where you feel it, and the side."),
    ],
)  # fmt: skip
def test_malformed_answers_are_refused_with_a_message_for_that_field(question, raw, message):
    assert error_of(question, raw) == message


def test_a_future_date_is_refused_when_the_question_asks_about_the_past():
    tomorrow = (dt.date.today() + dt.timedelta(days=2)).isoformat()  # noqa: DTZ011 - any zone's tomorrow
    assert error_of(DATE, tomorrow) == "This date can't be in the future."


def test_a_required_question_left_blank_is_an_error_unless_saving_for_later():
    form = form_with({**SCALE, "required": True})
    with pytest.raises(ValidationError) as caught:
        form.clean({"q": ""})
    assert caught.value.message_dict == {"q": ["Please answer this question."]}
    assert form.clean({"q": ""}, complete=False) == {}


def test_consent_must_be_given():
    assert error_of({**YES_NO, "must_be_yes": True}, "no") == "You need to agree to continue."


def test_a_dependent_question_is_asked_only_when_its_condition_holds_and_its_answer_is_dropped_otherwise():
    parent = {"code": "radiates", "type": "yes_no", "text": "Radiates?"}
    child = {**SINGLE, "code": "side", "required": True, "enable_when": [{"question": "radiates", "equals": True}]}
    form = form_with(child, before=[parent])
    with pytest.raises(ValidationError) as caught:
        form.clean({"radiates": "yes"})
    assert caught.value.message_dict == {"side": ["Please answer this question."]}
    assert form.clean({"radiates": "no", "side": "a"}) == {"radiates": False}


def test_answers_to_questions_that_are_not_in_the_form_are_refused():
    with pytest.raises(ValidationError) as caught:
        form_with(YES_NO).clean({"q": "yes", "injected": "x"})
    assert caught.value.message_dict == {"injected": ["Not a question of this form."]}


@pytest.mark.parametrize(
    ("definition", "problem"),
    [
        ({"sections": []}, "at least one section"),
        ({"sections": [{"code": "s", "questions": [{"code": "q", "type": "essay", "text": "?"}]}]}, "unknown type"),
        ({"sections": [{"code": "s", "questions": [{"code": "q", "type": "single_choice", "text": "?"}]}]}, "options"),
        ({"sections": [{"code": "s", "questions": [{**BODY, "regions": ["elsewhere"]}]}]}, "body_regions.yaml"),
        ({"sections": [{"code": "s", "questions": [{**YES_NO, "enable_when": [{"question": "later", "equals": 1}]}]}]},
         "earlier question"),
        ({"sections": [{"code": "s", "questions": [YES_NO, YES_NO]}]}, "duplicate question code"),
        ({"sections": [{"code": "s", "questions": [YES_NO]}],
          "screening": [{"code": "r", "severity": "urgent", "title": "R", "when": {"question": "no", "equals": 1}}]},
         "unknown question"),
        ({"sections": [{"code": "s", "questions": [YES_NO]}],
          "screening": [{"code": "r", "severity": "bad", "title": "R", "when": {"question": "q", "equals": 1}}]},
         "severity"),
    ],
)  # fmt: skip
def test_a_broken_definition_is_refused_before_it_can_be_published(definition, problem):
    with pytest.raises(DefinitionError, match=problem):
        parse_form({"code": "t", "title": "T", **definition})
