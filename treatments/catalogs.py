"""Load the shared catalogs from `catalog_data/`.

Idempotent: shared rows (clinic empty) are matched by code, created when missing and
updated when the file changed; clinic additions are never touched. Every row goes
through `full_clean()`, so a bad code in a YAML file stops the load with its name.
"""

from __future__ import annotations

import functools
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


# libyaml's loader when PyYAML was built with it: the pure-Python one is slow enough to
# matter for a test suite that loads the catalogs in many tests.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=16)
def _parsed(path: Path, mtime_ns: int) -> tuple[dict, ...]:
    with path.open(encoding="utf-8") as handle:
        return tuple(yaml.load(handle, Loader=_Loader) or [])  # noqa: S506  # nosec B506 - a safe loader


def read_catalog(name: str) -> list[dict]:
    path = DATA_DIR / name
    return [dict(row) for row in _parsed(path, path.stat().st_mtime_ns)]


def _sync(model: type[models.Model], rows: list[tuple[str, dict]], existing: dict | None = None) -> tuple[int, int]:
    """Create or update the shared rows of `model`; return (created, updated).

    Fields are validated row by row; uniqueness and check constraints are left to the
    database (one bulk insert instead of a query per constraint per row).
    """
    if existing is None:
        existing = _shared(model)
    # Related rows come from the catalogs just loaded: checking that they exist is a query each.
    related = [field.name for field in model._meta.fields if field.is_relation]
    new, changed = [], []
    for code, values in rows:
        obj = existing.get(code)
        if obj is None:
            obj = model(code=code, **values)
            new.append(obj)
        elif all(getattr(obj, name) == value for name, value in values.items()):
            continue
        else:
            for name, value in values.items():
                setattr(obj, name, value)
            changed.append(obj)
        obj.full_clean(exclude=related, validate_unique=False, validate_constraints=False)
    model.objects.bulk_create(new)
    for obj in changed:
        obj.save()
    existing.update((obj.code, obj) for obj in new)
    return len(new), len(changed)


def aliases(row: dict) -> str:
    """A row's `aliases` list as the comma-separated text the search reads."""
    return ", ".join(str(alias).strip() for alias in row.get("aliases", []) if str(alias).strip())


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
    report["body regions"] = (0, 0)
    regions = _shared(BodyRegion)
    for row in read_catalog("body_regions.yaml"):
        parent = regions[row["parent"]] if row.get("parent") else None
        result = _sync(
            BodyRegion,
            [(row["code"], {"name": row["name"], "aliases": aliases(row), "parent": parent})],
            existing=regions,
        )
        report["body regions"] = tuple(a + b for a, b in zip(report["body regions"], result, strict=True))

    report["muscles"] = _sync(
        Muscle,
        [
            (
                row["code"],
                {
                    "name": row["name"],
                    "aliases": aliases(row),
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
    points = _shared(TriggerPoint)
    through = TriggerPoint.referral_regions.through
    wanted = {(points[row["code"]].pk, regions[code].pk) for row in trigger_rows for code in row.get("refers_to", [])}
    shared = through.objects.filter(triggerpoint__clinic__isnull=True)
    present = set(shared.values_list("triggerpoint_id", "bodyregion_id"))
    for point_id, region_id in present - wanted:
        shared.filter(triggerpoint_id=point_id, bodyregion_id=region_id).delete()
    through.objects.bulk_create(
        [through(triggerpoint_id=point_id, bodyregion_id=region_id) for point_id, region_id in wanted - present]
    )

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
                    "aliases": aliases(row),
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
