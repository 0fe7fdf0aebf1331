"""Load the shared questionnaires in `catalog_data/`: a changed file becomes the next version.

Every file is schema-checked first (intake/schema.py); a malformed one stops the load.
"""

from __future__ import annotations

from pathlib import Path

from intake.schema import read_checked
from intake.services import questionnaire_publish

DATA_DIR = Path(__file__).resolve().parent / "catalog_data"


def read_definition(name: str) -> dict:
    """A file of `catalog_data/`, schema-checked: DefinitionFileError names the file, line and problem."""
    return read_checked(DATA_DIR / name)


def load_questionnaires(*, stdout=None, data_dir: Path | None = None) -> int:
    """Publish every file of `data_dir`; all are checked before any is published."""
    definitions = [read_checked(path) for path in sorted((data_dir or DATA_DIR).glob("*.yaml"))]
    created = 0
    for definition in definitions:
        questionnaire, was_created = questionnaire_publish(definition=definition)
        created += was_created
        if stdout:
            state = "published" if was_created else "unchanged"
            stdout.write(f"questionnaire {questionnaire.code} v{questionnaire.version}: {state}\n")
    return created
