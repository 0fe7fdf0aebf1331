from collections import defaultdict
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from clinic.models import AuditCheckpoint, AuditEvent
from clinic.security.audit import audit_checkpoint_is_signed, audit_checkpoints_from_file, audit_verify


class Command(BaseCommand):
    help = (
        "Check the audit hash chain of every clinic against its signed checkpoints (the table, and "
        "AUDIT_CHECKPOINT_FILE or --checkpoint-file); exit non-zero on any break. Read-only."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoint-file",
            help="A JSON-lines copy of the checkpoints (default: AUDIT_CHECKPOINT_FILE, when set).",
        )

    def handle(self, *args, checkpoint_file=None, **options):
        path = checkpoint_file or settings.AUDIT_CHECKPOINT_FILE
        problems: list[str] = []
        from_file = defaultdict(list)
        if path:
            if Path(path).exists():
                copies, unreadable = audit_checkpoints_from_file(path)
                problems += unreadable
                for checkpoint in copies:
                    from_file[checkpoint.clinic_id].append(checkpoint)
            elif checkpoint_file:
                raise CommandError(f"{path}: no such file")
        # Chains named by a checkpoint count too: a truncated table leaves no events to name them.
        clinic_ids = set(AuditEvent.objects.order_by().values_list("clinic_id", flat=True).distinct())
        clinic_ids |= set(AuditCheckpoint.objects.order_by().values_list("clinic_id", flat=True).distinct())
        clinic_ids |= set(from_file)
        anchored = 0
        for clinic_id in sorted(clinic_ids, key=lambda pk: (pk is not None, pk or 0)):
            stored = list(AuditCheckpoint.objects.filter(clinic_id=clinic_id))
            in_table = {(checkpoint.last_event_id, checkpoint.signature) for checkpoint in stored}
            for copy in from_file[clinic_id]:
                if audit_checkpoint_is_signed(copy) and (copy.last_event_id, copy.signature) not in in_table:
                    problems.append(
                        f"clinic {clinic_id}: the checkpoint through event {copy.last_event_id} in {path} "
                        "is missing from the checkpoint table (checkpoint rows were deleted)"
                    )
            checkpoints = stored + from_file[clinic_id]
            anchored += len(stored)
            for item in audit_verify(clinic_id=clinic_id, checkpoints=checkpoints):
                problems.append(f"clinic {clinic_id}: event {item.event_id}: {item.problem}")
        for line in problems:
            self.stdout.write(line)
        if problems:
            raise CommandError(f"{len(problems)} break(s) in the audit chain.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit chain intact ({AuditEvent.objects.count()} events); {anchored} checkpoint(s) hold."
            )
        )
