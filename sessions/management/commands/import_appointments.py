from django.core.management.base import CommandError

from clinic.csv_import import CsvImportCommand
from clinic.models import Membership
from sessions.csv_io import APPOINTMENT_COLUMNS, appointments_import_csv


class Command(CsvImportCommand):
    help = (
        "Import appointments from a CSV export of another system: all rows or none. Double bookings "
        "are refused by line. --dry-run validates and reports row errors without writing."
    )
    columns = APPOINTMENT_COLUMNS
    noun = "appointment"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--by", required=True, help="Username of the staff member importing (recorded as booking them)."
        )

    def handle(self, *args, file, clinic, map, by, dry_run, date_format, **options):
        member = Membership.objects.filter(clinic__slug=clinic, user__username=by, is_active=True)
        member = member.select_related("user").first()
        if member is None:
            raise CommandError(f"{by!r} is not a staff member of clinic {clinic!r}.")
        self.run_import(
            clinic=clinic, file=file, spec=map, dry_run=dry_run, importer=appointments_import_csv,
            imported_by=member.user, date_format=date_format,
        )  # fmt: skip
