"""One pending re-booking ladder per patient: collapse the duplicates, then add the constraint.

Before this, each signed note scheduled its own ladder, so a patient could have several. The
newest note's ladder (latest `context.since`, i.e. signing time) stays scheduled; the scheduled
rungs of every other ladder are cancelled with a reason, as `followup_nudges_schedule` now does.
"""

import datetime as dt

from django.db import migrations, models
from django.utils import timezone

SUPERSEDED = "superseded by a newer note"


def _since(row) -> dt.datetime:
    try:
        since = dt.datetime.fromisoformat((row.context or {})["since"])
    except (KeyError, TypeError, ValueError):
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return since if since.tzinfo else since.replace(tzinfo=dt.UTC)


def followup_ladders_collapse(message_model) -> int:
    """Cancel all but one scheduled follow-up ladder per patient; returns how many rows it cancelled.

    `message_model` is the Message class (the historical one in the migration, the real one in tests).
    """
    pending = message_model.objects.filter(kind="followup_nudge", status="scheduled").order_by("patient_id", "id")
    by_patient: dict[int, list] = {}
    for row in pending.only("id", "patient_id", "about_type_id", "about_id", "occurrence", "context"):
        by_patient.setdefault(row.patient_id, []).append(row)
    cancel: list[int] = []
    for rows in by_patient.values():
        newest = max(rows, key=lambda row: (_since(row), row.about_id, row.id))
        kept_rungs: set[str] = set()
        for row in sorted(rows, key=lambda row: -row.id):
            same_ladder = (row.about_type_id, row.about_id) == (newest.about_type_id, newest.about_id)
            if same_ladder and row.occurrence not in kept_rungs:
                kept_rungs.add(row.occurrence)
            else:
                cancel.append(row.id)
    if cancel:
        message_model.objects.filter(pk__in=cancel).update(
            status="cancelled", reason=SUPERSEDED, updated_at=timezone.now()
        )
    return len(cancel)


def collapse(apps, schema_editor) -> None:
    followup_ladders_collapse(apps.get_model("clinic", "Message"))


class Migration(migrations.Migration):
    dependencies = [
        ("clinic", "0011_two_factor_every_role"),
    ]

    operations = [
        migrations.RunPython(collapse, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="message",
            constraint=models.UniqueConstraint(
                condition=models.Q(("kind", "followup_nudge"), ("status", "scheduled")),
                fields=("patient", "occurrence"),
                name="message_one_followup_ladder",
            ),
        ),
    ]
