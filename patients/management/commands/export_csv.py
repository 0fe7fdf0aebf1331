from django.core.management.base import BaseCommand, CommandError

from clinic.models import AuditAction, Clinic
from clinic.security.audit import audit_record

# Filled by the apps that export (patients; sessions registers appointments in its ready()).
from patients.csv_io import CSV_EXPORTS as EXPORTS


class Command(BaseCommand):
    help = "Write a clinic's patients or appointments as CSV (to stdout, or --output FILE). Audited."

    def add_arguments(self, parser):
        parser.add_argument("what", choices=sorted(EXPORTS))
        parser.add_argument("--clinic", required=True, help="Clinic slug, e.g. demo.")
        parser.add_argument("--output", help="File to write; stdout when absent.")

    def handle(self, *args, what, clinic, output, **options):
        found = Clinic.objects.filter(slug=clinic).first()
        if found is None:
            raise CommandError(f"No clinic with slug {clinic!r}.")
        if output:
            with open(output, "w", encoding="utf-8", newline="") as handle:
                count = EXPORTS[what](clinic=found, out=handle)
        else:
            count = EXPORTS[what](clinic=found, out=self.stdout)
        audit_record(action=AuditAction.EXPORT, clinic=found, via="export", extra={"what": what, "rows": count})
        self.stderr.write(f"Exported {count} {what} of {found.slug}.")
