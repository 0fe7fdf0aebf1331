"""Load the shared catalogs from `catalog_data/`. Idempotent: rows are matched by code."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.db import transaction

from treatments.models import Modality

DATA_DIR = Path(__file__).resolve().parent / "catalog_data"


def read_catalog(name: str) -> list[dict]:
    with (DATA_DIR / name).open(encoding="utf-8") as handle:
        return yaml.safe_load(handle) or []


@transaction.atomic
def load_catalogs(*, stdout=None) -> dict[str, int]:
    created = 0
    for row in read_catalog("modalities.yaml"):
        _, was_created = Modality.objects.update_or_create(
            code=row["code"], defaults={"name": row["name"], "description": row.get("description", "")}
        )
        created += was_created
    if stdout:
        stdout.write(f"modalities: {Modality.objects.count()} ({created} new)\n")
    return {"modalities": created}
