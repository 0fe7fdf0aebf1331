from django.core.management.base import BaseCommand, CommandError

from clinic.models import AuditEvent
from clinic.security.audit import audit_verify


class Command(BaseCommand):
    help = "Check the audit hash chain of every clinic; exit non-zero on any break."

    def handle(self, *args, **options):
        clinic_ids = AuditEvent.objects.order_by().values_list("clinic_id", flat=True).distinct()
        total = 0
        for clinic_id in clinic_ids:
            breaks = audit_verify(clinic_id=clinic_id)
            total += len(breaks)
            for item in breaks:
                self.stdout.write(f"clinic {clinic_id}: event {item.event_id}: {item.problem}")
        if total:
            raise CommandError(f"{total} break(s) in the audit chain.")
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact ({AuditEvent.objects.count()} events)."))
