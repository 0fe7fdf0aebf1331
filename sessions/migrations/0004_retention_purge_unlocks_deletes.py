"""Let `manage.py apply_retention` delete signed notes past the retention period, and nothing else.

The signed-note locks (0003) refuse UPDATE and DELETE whoever asks. Retention must delete
signed notes, their entries and addenda once the clinic's retention period has passed. The
lock functions now let a DELETE through when the transaction has set the session-local
setting `clinic.retention_purge` to 'on' (`SET LOCAL`, so it ends with the transaction).
UPDATEs and INSERTs stay refused whatever the setting: signed content can still not be edited.

Why a setting and not a privileged function: the application's role owns these tables and
could drop the triggers anyway, so the lock guards against mistakes, not against that role.
A setting that only `patients.privacy.retention_apply` sets, inside the transaction that
writes the audit row for the removal, keeps one documented and audited path, and needs no
extra database role in deployment. SQLite has no triggers; the services guard there.
"""

from django.db import migrations

PURGING = "coalesce(current_setting('clinic.retention_purge', true), '') = 'on'"

FUNCTIONS = """
CREATE OR REPLACE FUNCTION treatment_note_locked() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND __PURGING__ THEN RETURN OLD; END IF;
    IF OLD.status = 'signed' THEN
        RAISE EXCEPTION 'signed notes are locked (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION treatment_entry_locked() RETURNS trigger AS $$
DECLARE
    locked boolean := false;
BEGIN
    IF TG_OP = 'DELETE' AND __PURGING__ THEN RETURN OLD; END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        locked := EXISTS (SELECT 1 FROM treatment_sessions_treatmentsession WHERE id = OLD.session_id AND status = 'signed');
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NOT locked THEN
        locked := EXISTS (SELECT 1 FROM treatment_sessions_treatmentsession WHERE id = NEW.session_id AND status = 'signed');
    END IF;
    IF locked THEN
        RAISE EXCEPTION 'signed notes are locked (% of an entry refused)', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION treatment_trigger_point_locked() RETURNS trigger AS $$
DECLARE
    entry_id bigint;
BEGIN
    IF TG_OP = 'DELETE' AND __PURGING__ THEN RETURN OLD; END IF;
    IF TG_OP = 'DELETE' THEN entry_id := OLD.massageentry_id; ELSE entry_id := NEW.massageentry_id; END IF;
    IF EXISTS (
        SELECT 1 FROM treatment_sessions_massageentry e JOIN treatment_sessions_treatmentsession s ON s.id = e.session_id
        WHERE e.id = entry_id AND s.status = 'signed'
    ) THEN
        RAISE EXCEPTION 'signed notes are locked (% of a trigger point refused)', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION treatment_addendum_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND __PURGING__ THEN RETURN OLD; END IF;
    RAISE EXCEPTION 'addenda are append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
""".replace("__PURGING__", PURGING)


def _previous_functions() -> str:
    from importlib import import_module

    return import_module("sessions.migrations.0003_signed_note_lock").FUNCTIONS


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTIONS, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_previous_functions(), params=None)


class Migration(migrations.Migration):
    dependencies = [("treatment_sessions", "0003_signed_note_lock")]

    operations = [migrations.RunPython(forwards, backwards)]
