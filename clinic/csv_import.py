"""The all-or-nothing CSV import that patients and appointments share.

An importer gives a column mapping (our field -> their header), a `parse_row` that
turns one row into values or raises ValidationError by field, and a `write_row` that
writes one row through the app's own service. Every row is parsed first; then all are
written in one transaction (each row in a savepoint, so one refusal doesn't hide the
next), committed only when no row has an error. A dry run does the same and rolls back,
so it reports what the writes would refuse (duplicates, double bookings) too. A cell our
exports quoted against formula injection (`'=x`, `'+1416...`) is read back without the quote.
Dates: ISO 8601 (`1980-04-03`) always; any other spelling only with the file's date format
given (`DMY`, `MDY`, `YMD` or a strptime format such as `%d.%m.%Y`): the day/month order of
`03/04/1980` is never guessed, and a date that happens to be unambiguous (`25/12/1980`) is
refused too without a format, so a file is read by one rule, not row by row.
`CsvImportCommand` is the matching management command: file, mapping, progress bar,
errors by line.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
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


# --- dates ---------------------------------------------------------------------------

DATE_ORDERS = {"DMY": ("%d", "%m", "%Y"), "MDY": ("%m", "%d", "%Y"), "YMD": ("%Y", "%m", "%d")}
_SEPARATORS = ("/", "-", ".", " ")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
DATE_FORMAT_HELP = (
    "The file's date format when dates are not ISO 8601 (YYYY-MM-DD): DMY (25/12/1980), "
    "MDY (12/25/1980), YMD, or a strptime format such as %d.%m.%Y."
)


def date_format_parse(spec: str | None) -> str:
    """The date format as given ('' for none), checked; ValueError says what is accepted."""
    spec = (spec or "").strip()
    if not spec:
        return ""
    if spec.upper() in DATE_ORDERS:
        return spec.upper()
    if all(part in spec for part in ("%d", "%m")) and ("%Y" in spec or "%y" in spec):
        try:
            dt.datetime.strptime(dt.date(1980, 12, 25).strftime(spec), spec)  # noqa: DTZ007 - a date
        except ValueError:
            pass
        else:
            return spec
    raise ValueError(f"Unknown date format {spec!r}. {DATE_FORMAT_HELP}")


def _date_formats(date_format: str) -> list[str]:
    if date_format in DATE_ORDERS:
        return [sep.join(DATE_ORDERS[date_format]) for sep in _SEPARATORS]
    return [date_format]


def _no_format(raw: str, column: str) -> ValidationError:
    return ValidationError(
        f"Column {column!r}: {raw!r} is not an ISO 8601 date (YYYY-MM-DD) and no date format was given, "
        "so its day/month order is not guessed. Give the file's format: --date-format DMY or MDY "
        "(or a strptime format such as %d/%m/%Y); the API import takes it as date_format."
    )


def csv_date(raw: str, *, date_format: str, column: str) -> dt.date:
    """A date cell: ISO 8601 always, otherwise the file's `date_format`; never guessed."""
    if _ISO_DATE.fullmatch(raw):
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            raise ValidationError(f"Column {column!r}: {raw!r} is not a date.") from None
    if not date_format:
        raise _no_format(raw, column)
    for fmt in _date_formats(date_format):
        try:
            return dt.datetime.strptime(raw, fmt).date()  # noqa: DTZ007 - a date, no time zone
        except ValueError:
            continue
    raise ValidationError(f"Column {column!r}: {raw!r} is not a date in the format {date_format}.")


def csv_datetime(raw: str, *, date_format: str, column: str) -> dt.datetime:
    """A date-time cell: ISO 8601 always (offset kept, naive if none), else the file's date
    format followed by HH:MM[:SS]."""
    try:
        return dt.datetime.fromisoformat(raw)
    except ValueError:
        pass
    if not date_format:
        raise _no_format(raw, column)
    for fmt in _date_formats(date_format):
        for time in ("%H:%M", "%H:%M:%S"):
            try:
                return dt.datetime.strptime(raw, f"{fmt} {time}")  # noqa: DTZ007 - zoned by the caller
            except ValueError:
                continue
    raise ValidationError(f"Column {column!r}: {raw!r} is not a date-time in the format {date_format} HH:MM.")


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
        parser.add_argument("--date-format", default="", help=DATE_FORMAT_HELP.replace("%", "%%"))

    def run_import(
        self, *, clinic: str, file: str, spec: str, dry_run: bool, importer, date_format: str = "", **extra
    ) -> ImportReport:
        found = Clinic.objects.filter(slug=clinic).first()
        if found is None:
            raise CommandError(f"No clinic with slug {clinic!r}.")
        try:
            with open(file, encoding="utf-8-sig", newline="") as handle:
                text = handle.read()
            mapping = column_mapping_parse(spec, self.columns)
            date_format = date_format_parse(date_format)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        total = max(sum(1 for _ in csv.reader(io.StringIO(text))) - 1, 0)
        try:
            report = importer(
                clinic=found,
                lines=io.StringIO(text, newline=""),
                mapping=mapping,
                dry_run=dry_run,
                date_format=date_format,
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
