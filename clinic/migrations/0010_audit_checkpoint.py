"""Signed checkpoints of each audit chain's head, in their own table (see AuditCheckpoint).

On PostgreSQL the table is append-only like the audit table: a trigger refuses UPDATE and
DELETE whoever asks. The deploy roles script grants the app only SELECT and INSERT on it.
"""

import django.db.models.deletion
from django.db import migrations, models

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION clinic_audit_checkpoint_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit checkpoints are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER clinic_auditcheckpoint_append_only
    BEFORE UPDATE OR DELETE ON clinic_auditcheckpoint
    FOR EACH ROW EXECUTE FUNCTION clinic_audit_checkpoint_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS clinic_auditcheckpoint_append_only ON clinic_auditcheckpoint;
DROP FUNCTION IF EXISTS clinic_audit_checkpoint_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("clinic", "0009_audit_chain_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("last_event_id", models.BigIntegerField(unique=True)),
                ("last_hash", models.CharField(max_length=64)),
                (
                    "event_count",
                    models.PositiveBigIntegerField(help_text="Events in the chain up to and including last_event_id."),
                ),
                ("created_at", models.DateTimeField()),
                ("signature", models.CharField(max_length=64)),
                (
                    "clinic",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="clinic.clinic",
                    ),
                ),
            ],
            options={
                "ordering": ["-id"],
                "indexes": [models.Index(fields=["clinic", "-last_event_id"], name="audit_checkpoint_chain")],
            },
        ),
        migrations.RunPython(forwards, backwards),
    ]
