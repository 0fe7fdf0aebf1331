import csv
import io
import sys

from django.core.management.base import BaseCommand, CommandError

from clinic.models import Clinic, Membership
from patients.csv_io import ImportRefused
from sessions.csv_io import APPOINTMENT_COLUMNS, appointments_import_csv, parse_appointment_mapping


class Command(BaseCommand):
    help = (
        "Import appointments from a CSV export of another system: all rows or none. Double bookings "
        "are refused by line. --dry-run validates and reports row errors without writing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file with a header row (UTF-8; a BOM is fine).")
        parser.add_argument("--clinic", required=True, help="Clinic slug, e.g. demo.")
        parser.add_argument(
            "--map",
            default="",
            help=f"Column mapping field=Column,... for columns not named like ours ({', '.join(APPOINTMENT_COLUMNS)}).",
        )
        parser.add_argument(
            "--by", required=True, help="Username of the staff member importing (recorded as booking them)."
        )
        parser.add_argument("--dry-run", action="store_true", help="Validate and report; write nothing.")

    def handle(self, *args, file, clinic, map, by, dry_run, **options):
        found = Clinic.objects.filter(slug=clinic).first()
        if found is None:
            raise CommandError(f"No clinic with slug {clinic!r}.")
        member = Membership.objects.filter(clinic=found, user__username=by, is_active=True).select_related("user")
        if not member.exists():
            raise CommandError(f"{by!r} is not a staff member of {found.slug}.")
        try:
            with open(file, encoding="utf-8-sig", newline="") as handle:
                text = handle.read()
            mapping = parse_appointment_mapping(map)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        total = max(sum(1 for _ in csv.reader(io.StringIO(text))) - 1, 0)
        try:
            report = appointments_import_csv(
                clinic=found,
                lines=io.StringIO(text, newline=""),
                mapping=mapping,
                dry_run=dry_run,
                progress=lambda done: self._progress(done, total),
                imported_by=member.first().user,
            )
        except ImportRefused as refused:
            self.stderr.write("")
            for line, errors in sorted(refused.report.errors.items()):
                for name, messages in errors.items():
                    self.stderr.write(f"line {line}: {name}: {' '.join(messages)}")
            raise CommandError(str(refused)) from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write("")
        if dry_run:
            self.stdout.write(f"Dry run: {report.rows} row(s) valid; nothing written.")
        else:
            self.stdout.write(f"Imported {report.created} appointment(s) into {found.slug}.")

    def _progress(self, done: int, total: int) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        sys.stderr.flush()
