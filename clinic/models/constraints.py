"""Database constraints that only PostgreSQL can enforce, made safe for the SQLite default.

An `ExclusionConstraint` makes `migrate` fail on SQLite ("near EXCLUDE: syntax error") and
its `validate()` cannot run there. `PostgresOnlyExclusionConstraint` emits its SQL and
validates only when the connection is PostgreSQL; on SQLite the services' own check under
serialized writes (`transaction_mode=IMMEDIATE`) carries the guarantee instead.
"""

from __future__ import annotations

from django.contrib.postgres.constraints import ExclusionConstraint
from django.db import DEFAULT_DB_ALIAS, connections


def _is_postgresql(schema_editor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


class PostgresOnlyExclusionConstraint(ExclusionConstraint):
    def constraint_sql(self, model, schema_editor):
        return super().constraint_sql(model, schema_editor) if _is_postgresql(schema_editor) else None

    def create_sql(self, model, schema_editor):
        return super().create_sql(model, schema_editor) if _is_postgresql(schema_editor) else None

    def remove_sql(self, model, schema_editor):
        return super().remove_sql(model, schema_editor) if _is_postgresql(schema_editor) else None

    def validate(self, model, instance, exclude=None, using=DEFAULT_DB_ALIAS):
        if connections[using].vendor == "postgresql":
            super().validate(model, instance, exclude=exclude, using=using)
