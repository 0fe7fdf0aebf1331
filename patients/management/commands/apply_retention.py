from django.core.management.base import BaseCommand

from patients.privacy import retention_apply


class Command(BaseCommand):
    help = (
        "Remove erased patients whose last visit is older than their clinic's retention period "
        "(Clinic.retention_years, default 7), with their clinical records. Safe to run repeatedly; "
        "each removal is audited. Schedule it daily."
    )

    def handle(self, *args, **options):
        removed = retention_apply()
        self.stdout.write(self.style.SUCCESS(f"Retention applied: {len(removed)} patient record(s) removed."))
