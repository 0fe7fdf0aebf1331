"""The all-or-nothing CSV import that patients and appointments share.

An importer gives a column mapping (our field -> their header), a `parse_row` that
turns one row into values or raises ValidationError by field, and a `write_row` that
writes one row through the app's own service. Every row is parsed first; then all are
written in one transaction (each row in a savepoint, so one refusal doesn't hide the
next), committed only when no row has an error. A dry run does the same and rolls back,
so it reports what the writes would refuse (duplicates, double bookings) too. A cell our
exports quoted against formula injection (`'=x`, `'+1416...`) is read back without the quote.
`CsvImportCommand` is the matching management command: file, mapping, progress bar,
errors by line.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from clinic.csv_safety import csv_cell_restore
from clinic.models import Clinic


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    errors: dict[int, dict[str, list[str]]] = field(default_factory=dict)  # CSV line number -> field errors
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors


class ImportRefused(Exception):  # noqa: N818 - a refusal, reported to the user
    def __init__(self, report: ImportReport):
        super().__init__(f"{len(report.errors)} row(s) with errors; nothing was imported.")
        self.report = report


def column_mapping_parse(spec: str, columns: dict[str, str]) -> dict[str, str]:
    """`given_name=First Name,family_name=Surname` over the default `columns`."""
    mapping = dict(columns)
    for part in filter(None, (p.strip() for p in spec.split(","))):
        ours, sep, theirs = part.partition("=")
        if not sep or ours.strip() not in columns:
            raise ValueError(f"Bad mapping {part!r}: use field=Column with field one of {', '.join(columns)}.")
        mapping[ours.strip()] = theirs.strip()
    return mapping


def _errors_of(exc: ValidationError) -> dict[str, list[str]]:
    return exc.message_dict if hasattr(exc, "error_dict") else {"row": exc.messages}


def csv_import_run(
    *,
    lines: Iterable[str],
    mapping: dict[str, str],
    required: Iterable[str],
    parse_row: Callable[[dict], dict],
    write_row: Callable[[int, dict], None],
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    reader = csv.DictReader(lines)
    missing = [mapping[name] for name in required if mapping[name] not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"Missing column(s): {', '.join(missing)}. Found: {', '.join(reader.fieldnames or [])}.")
    report = ImportReport(dry_run=dry_run)
    rows: list[tuple[int, dict]] = []
    for row in reader:
        report.rows += 1
        row = {key: csv_cell_restore(value) if isinstance(value, str) else value for key, value in row.items()}
        try:
            rows.append((reader.line_num, parse_row(row)))
        except ValidationError as exc:
            report.errors[reader.line_num] = _errors_of(exc)
        if progress is not None:
            progress(report.rows)
    if report.errors:
        raise ImportRefused(report)
    with transaction.atomic():
        for line, values in rows:
            try:
                with transaction.atomic():
                    write_row(line, values)
            except ValidationError as exc:
                report.errors[line] = _errors_of(exc)
        if report.errors:
            raise ImportRefused(report)  # leaving the block with it rolls every row back
        if dry_run:
            transaction.set_rollback(True)
    report.created = 0 if dry_run else len(rows)
    return report


class CsvImportCommand(BaseCommand):
    """Base of `import_patients` and `import_appointments`."""

    columns: dict[str, str] = {}
    noun = "row"

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file with a header row (UTF-8; a BOM is fine).")
        parser.add_argument("--clinic", required=True, help="Clinic slug, e.g. demo.")
        parser.add_argument(
            "--map",
            default="",
            help=f"Column mapping field=Column,... for columns not named like ours ({', '.join(self.columns)}).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Validate and report; write nothing.")

    def run_import(self, *, clinic: str, file: str, spec: str, dry_run: bool, importer, **extra) -> ImportReport:
        found = Clinic.objects.filter(slug=clinic).first()
        if found is None:
            raise CommandError(f"No clinic with slug {clinic!r}.")
        try:
            with open(file, encoding="utf-8-sig", newline="") as handle:
                text = handle.read()
            mapping = column_mapping_parse(spec, self.columns)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        total = max(sum(1 for _ in csv.reader(io.StringIO(text))) - 1, 0)
        try:
            report = importer(
                clinic=found,
                lines=io.StringIO(text, newline=""),
                mapping=mapping,
                dry_run=dry_run,
                progress=lambda done: self._progress(done, total),
                **extra,
            )
        except ImportRefused as refused:
            self.stderr.write("")
            for line, errors in sorted(refused.report.errors.items()):
                for name, messages in errors.items():
                    self.stderr.write(f"line {line}: {name}: {' '.join(messages)}")
            raise CommandError(str(refused)) from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if dry_run:
            self.stdout.write(f"Dry run: {report.rows} row(s) valid; nothing written.")
        else:
            self.stdout.write(f"Imported {report.created} {self.noun}(s) into {found.slug}.")
        return report

    def _progress(self, done: int, total: int) -> None:
        width = 30
        filled = width * done // total if total else width
        end = "" if sys.stderr.isatty() else "\n"
        if sys.stderr.isatty() or done == total:
            self.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", ending=end)
