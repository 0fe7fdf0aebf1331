"""Load the shared catalogs from `catalog_data/`.

Idempotent: shared rows (clinic empty) are matched by code, created when missing and
updated when the file changed; clinic additions are never touched. Every row goes
through `full_clean()`, so a bad code in a YAML file stops the load with its name.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from django.db import models, transaction

from treatments.models import (
    AcupuncturePoint,
    ArtProtocol,
    BodyRegion,
    Modality,
    Muscle,
    StructureKind,
    TriggerPoint,
    meridian_of,
)

DATA_DIR = Path(__file__).resolve().parent / "catalog_data"


def read_catalog(name: str) -> list[dict]:
    with (DATA_DIR / name).open(encoding="utf-8") as handle:
        return yaml.safe_load(handle) or []


def _sync(model: type[models.Model], rows: list[tuple[str, dict]]) -> tuple[int, int]:
    """Create or update the shared rows of `model`; return (created, updated)."""
    existing = {obj.code: obj for obj in model.objects.filter(clinic__isnull=True)}
    created = updated = 0
    for code, values in rows:
        obj = existing.get(code)
        if obj is None:
            obj = model(code=code, **values)
            created += 1
        elif all(getattr(obj, name) == value for name, value in values.items()):
            continue
        else:
            for name, value in values.items():
                setattr(obj, name, value)
            updated += 1
        obj.full_clean()
        obj.save()
        existing[code] = obj
    return created, updated


def _shared(model: type[models.Model]) -> dict[str, models.Model]:
    return {obj.code: obj for obj in model.objects.filter(clinic__isnull=True)}


@transaction.atomic
def load_catalogs(*, stdout=None) -> dict[str, int]:
    """Load every catalog; return how many rows each catalog gained."""
    report: dict[str, tuple[int, int]] = {}

    created = 0
    for row in read_catalog("modalities.yaml"):
        _, was_created = Modality.objects.update_or_create(
            code=row["code"], defaults={"name": row["name"], "description": row.get("description", "")}
        )
        created += was_created
    report["modalities"] = (created, 0)

    # Parents are listed before their children, so each parent exists when it is needed.
    region_rows = read_catalog("body_regions.yaml")
    report["body regions"] = (0, 0)
    for row in region_rows:
        regions = _shared(BodyRegion)
        parent = regions[row["parent"]] if row.get("parent") else None
        result = _sync(BodyRegion, [(row["code"], {"name": row["name"], "parent": parent})])
        report["body regions"] = tuple(a + b for a, b in zip(report["body regions"], result, strict=True))
    regions = _shared(BodyRegion)

    report["muscles"] = _sync(
        Muscle,
        [
            (
                row["code"],
                {
                    "name": row["name"],
                    "kind": row.get("kind", StructureKind.MUSCLE),
                    "region": regions[row["region"]],
                    "description": row.get("description", ""),
                },
            )
            for row in read_catalog("muscles.yaml")
        ],
    )
    muscles = _shared(Muscle)

    trigger_rows = read_catalog("trigger_points.yaml")
    report["trigger points"] = _sync(
        TriggerPoint,
        [
            (
                row["code"],
                {"name": row["name"], "muscle": muscles[row["muscle"]], "referral_pattern": row.get("pattern", "")},
            )
            for row in trigger_rows
        ],
    )
    points = {
        tp.code: tp for tp in TriggerPoint.objects.filter(clinic__isnull=True).prefetch_related("referral_regions")
    }
    for row in trigger_rows:
        wanted = {regions[code] for code in row.get("refers_to", [])}
        point = points[row["code"]]
        if set(point.referral_regions.all()) != wanted:
            point.referral_regions.set(wanted)

    report["ART protocols"] = _sync(
        ArtProtocol,
        [
            (
                row["code"],
                {
                    "name": row["name"],
                    "structure": muscles[row["structure"]],
                    "contact": row["contact"],
                    "tension": row["tension"],
                    "patient_movement": row["movement"],
                },
            )
            for row in read_catalog("art_protocols.yaml")
        ],
    )

    report["acupuncture points"] = _sync(
        AcupuncturePoint,
        [
            (
                row["code"],
                {
                    "name": row["name"],
                    "meridian": meridian_of(row["code"]),
                    "region": regions[row["region"]],
                    "is_midline": row.get("midline", meridian_of(row["code"]) in ("GV", "CV")),
                    "avoid_in_pregnancy": row.get("pregnancy", False),
                    "cautions": row.get("cautions", ""),
                },
            )
            for row in read_catalog("acupuncture_points.yaml")
        ],
    )

    if stdout:
        for name, (new, changed) in report.items():
            stdout.write(f"{name}: {new} new, {changed} updated\n")
    return {name: new for name, (new, _) in report.items()}
