"""Trigram index for patient search (`Patient.objects.search`), PostgreSQL only.

`search_text LIKE '%term%'` is answered from this GIN index instead of a table scan.
pg_trgm ships with PostgreSQL; creating the extension needs a role allowed to do so
(the database owner on PostgreSQL 13+, where pg_trgm is a trusted extension). SQLite,
the embedded default, has no such index and searches by scanning, which is fine at
the size of a demo.
"""

from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS patient_search_trgm ON patients_patient USING gin (search_text gin_trgm_ops)"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS patient_search_trgm")


class Migration(migrations.Migration):
    dependencies = [("patients", "0002_archive_merge_search")]

    operations = [migrations.RunPython(create, drop)]
