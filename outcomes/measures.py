"""Outcome measures: the definitions in `measure_data/*.yaml` and their published scoring.

Each file records the measure's licence and source. Where the licence does not let us
redistribute the questionnaire (`text_redistributable: false`), the file holds only the item
codes, value range and scoring; the clinic supplies its licensed wording (`MeasureText`).

Scoring never guesses: a response with more blank items than the published rule allows is
`incomplete` and has no score. Values outside an item's range are refused (ValidationError
naming the item), not clipped.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import yaml
from django.core.exceptions import ValidationError

DATA = Path(__file__).resolve().parent / "measure_data"
TWO_PLACES = Decimal("0.01")


@dataclass(frozen=True)
class Item:
    code: str
    text: str
    low: int
    high: int


@dataclass(frozen=True)
class Measure:
    code: str
    version: int
    title: str
    short: str
    licence: str
    source: str
    text_redistributable: bool
    scoring: str
    low: Decimal
    high: Decimal
    higher_is_better: bool
    mcid: Decimal
    max_missing: int
    loinc: dict | None
    instructions: str
    items: tuple[Item, ...]
    options: tuple[tuple[int, str], ...] = ()
    activities: tuple[int, int] = (0, 0)

    @property
    def item_codes(self) -> list[str]:
        return [item.code for item in self.items]

    def improvement(self, baseline: Decimal, latest: Decimal) -> Decimal:
        """The change from baseline, signed so that better is positive."""
        change = latest - baseline
        return change if self.higher_is_better else -change

    def reached_mcid(self, baseline: Decimal, latest: Decimal) -> bool:
        return self.improvement(baseline, latest) >= self.mcid


@dataclass
class Result:
    complete: bool
    score: Decimal | None
    missing: list[str] = field(default_factory=list)


def _measure(raw: dict) -> Measure:
    options = tuple((int(value), str(label)) for value, label in raw.get("options") or [])
    if options:
        low, high = min(v for v, _ in options), max(v for v, _ in options)
    else:
        low, high = raw.get("option_values") or (raw["min"], raw["max"])
    items = tuple(
        Item(
            code=str(entry["code"]),
            text=str(entry["text"]),
            low=int(entry.get("values", [low, high])[0]),
            high=int(entry.get("values", [low, high])[1]),
        )
        for entry in raw.get("items") or []
    )
    activities = raw.get("activities") or {}
    return Measure(
        code=raw["code"],
        version=int(raw["version"]),
        title=raw["title"],
        short=raw["short"],
        licence=" ".join(raw["licence"].split()),
        source=" ".join(raw["source"].split()),
        text_redistributable=bool(raw["text_redistributable"]),
        scoring=raw["scoring"],
        low=Decimal(str(raw["min"])),
        high=Decimal(str(raw["max"])),
        higher_is_better=bool(raw["higher_is_better"]),
        mcid=Decimal(str(raw["mcid"])),
        max_missing=int(raw.get("max_missing", 0)),
        loinc=raw.get("loinc"),
        instructions=" ".join(str(raw.get("instructions", "")).split()),
        items=items,
        options=options,
        activities=(int(activities.get("min", 0)), int(activities.get("max", 0))),
    )


@functools.cache
def measures() -> dict[str, Measure]:
    """Every shipped measure by code, read once per process."""
    found = {}
    for path in sorted(DATA.glob("*.yaml")):
        measure = _measure(yaml.safe_load(path.read_text()))
        found[measure.code] = measure
    return found


def measure_named(code: str) -> Measure:
    try:
        return measures()[code]
    except KeyError:
        raise ValidationError({"measure": [f"Unknown measure {code!r}."]}) from None


MEASURE_CHOICES = [("nprs", "NPRS"), ("psfs", "PSFS"), ("lefs", "LEFS"), ("odi", "ODI"), ("quickdash", "QuickDASH")]


# --- reading answers -------------------------------------------------------------------------


def _int_or_blank(value, *, name: str, low: int, high: int, errors: dict) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        errors[name] = [f"Enter a whole number from {low} to {high}."]
        return None
    try:
        number = int(value)
    except ValueError:
        errors[name] = [f"Enter a whole number from {low} to {high}."]
        return None
    if not low <= number <= high:
        errors[name] = [f"Enter a whole number from {low} to {high}."]
        return None
    return number


def clean_answers(measure: Measure, answers) -> dict:
    """The answers in their stored form: item code -> int or None (blank); for the PSFS a list of
    `{"name", "rating"}`. Out-of-range or malformed values raise a ValidationError per field."""
    if not isinstance(answers, dict):
        raise ValidationError({"answers": ["Send an object of item answers."]})
    errors: dict = {}
    if measure.scoring == "mean_of_activities":
        unknown = set(answers) - {"activities"}
        if unknown:
            errors["answers"] = [f"Unknown item(s): {', '.join(sorted(map(str, unknown)))}."]
        rows = answers.get("activities") or []
        if not isinstance(rows, list) or any(not isinstance(row, dict) for row in rows):
            raise ValidationError({"activities": ["Send a list of {name, rating} activities."]})
        if len(rows) > measure.activities[1]:
            errors["activities"] = [f"Name at most {measure.activities[1]} activities."]
        cleaned = []
        for index, row in enumerate(rows, start=1):
            name = row.get("name") or ""
            if not isinstance(name, str) or len(name) > 200:
                errors[f"activity_{index}"] = ["Name the activity in at most 200 characters."]
                continue
            rating = _int_or_blank(row.get("rating"), name=f"rating_{index}", low=0, high=10, errors=errors)
            if name.strip() or rating is not None:
                cleaned.append({"name": name.strip(), "rating": rating})
        if errors:
            raise ValidationError(errors)
        return {"activities": cleaned}
    known = {item.code: item for item in measure.items}
    unknown = set(answers) - set(known)
    if unknown:
        errors["answers"] = [f"Unknown item(s): {', '.join(sorted(map(str, unknown)))}."]
    cleaned = {
        code: _int_or_blank(answers.get(code), name=code, low=item.low, high=item.high, errors=errors)
        for code, item in known.items()
    }
    if errors:
        raise ValidationError(errors)
    return cleaned


# --- scoring, as published -------------------------------------------------------------------


def _two_places(value: Decimal) -> Decimal:
    return value.quantize(TWO_PLACES, rounding=ROUND_HALF_UP)


def score(measure: Measure, answers: dict) -> Result:
    """Score cleaned answers (`clean_answers`) by the measure's published rule."""
    if measure.scoring == "mean_of_activities":
        rows = answers.get("activities") or []
        missing = [f"rating_{i}" for i, row in enumerate(rows, start=1) if row["rating"] is None]
        missing += [f"activity_{i}" for i, row in enumerate(rows, start=1) if not row["name"]]
        if not rows:
            missing = ["activity_1"]
        if missing or len(rows) < measure.activities[0]:
            return Result(complete=False, score=None, missing=missing)
        total = sum(Decimal(row["rating"]) for row in rows)
        return Result(complete=True, score=_two_places(total / len(rows)))
    values = [answers.get(code) for code in measure.item_codes]
    missing = [code for code, value in zip(measure.item_codes, values, strict=True) if value is None]
    answered = [Decimal(value) for value in values if value is not None]
    if len(missing) > measure.max_missing or not answered:
        return Result(complete=False, score=None, missing=missing)
    if measure.scoring == "single":
        result = answered[0]
    elif measure.scoring == "sum":
        result = sum(answered)
    elif measure.scoring == "percent_of_answered":
        # ODI: total / (5 x sections answered) x 100.
        result = sum(answered) / (5 * len(answered)) * 100
    elif measure.scoring == "dash":
        # QuickDASH: ((sum of n responses / n) - 1) x 25.
        result = (sum(answered) / len(answered) - 1) * 25
    else:  # a definition file names a rule this code does not know: fail loudly, never guess
        raise ValueError(f"{measure.code}: unknown scoring rule {measure.scoring!r}")
    return Result(complete=True, score=_two_places(Decimal(result)), missing=missing)
