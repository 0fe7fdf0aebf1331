"""Patients read plain words: no source names or jargon in any text a patient sees.

Where a list comes from a book or a source document, the definition says so in a question's
`source:`, which only staff see (the admin's outline of the form).
"""

from __future__ import annotations

import re

import pytest

from intake.catalogs import DATA_DIR, read_definition
from intake.definition import parse_form

SHIPPED = sorted(path.name for path in DATA_DIR.glob("*.yaml"))
# Names of people and documents, and words a patient should not have to know.
NOT_FOR_PATIENTS = re.compile(
    r"\bTravell\b|\bSimons\b|\bLeahy\b|\b[Ss]eed \d|\bDr\b|\bDoctors\b|\bDVT\b|\bART\b|[Mm]yelopathy|[Rr]adiculopathy"
)


def patient_texts(form) -> list[str]:
    texts = [form.title, form.description]
    for section in form.sections:
        texts += [section.title, section.intro]
        for question in section.questions:
            texts += [question.text, question.help, question.min_label, question.max_label]
            texts += [option.label for option in question.options]
    return [text for text in texts if text]


@pytest.mark.parametrize("name", SHIPPED)
def test_no_patient_facing_text_names_a_source_or_uses_staff_jargon(name):
    form = parse_form(read_definition(name))
    offending = [text for text in patient_texts(form) if NOT_FOR_PATIENTS.search(text)]
    assert offending == []


def test_the_sources_are_kept_for_staff():
    form = parse_form(read_definition("leg_knee_back_pain.yaml"))
    assert "Travell" in form.questions["causes"].source
    assert "Travell" not in form.section("causes").intro
