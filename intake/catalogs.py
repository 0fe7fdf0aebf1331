"""Load the shared questionnaires in `catalog_data/`: a changed file becomes the next version."""

from __future__ import annotations

from pathlib import Path

import yaml

from intake.services import questionnaire_publish

DATA_DIR = Path(__file__).resolve().parent / "catalog_data"


def read_definition(name: str) -> dict:
    with (DATA_DIR / name).open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def load_questionnaires(*, stdout=None) -> int:
    created = 0
    for path in sorted(DATA_DIR.glob("*.yaml")):
        questionnaire, was_created = questionnaire_publish(definition=read_definition(path.name))
        created += was_created
        if stdout:
            state = "published" if was_created else "unchanged"
            stdout.write(f"questionnaire {questionnaire.code} v{questionnaire.version}: {state}\n")
    return created
