"""On PostgreSQL, refuse changes to a signed note whoever asks.

- the session row: no UPDATE or DELETE once its status is 'signed' (signing itself
  updates a draft row, so it passes);
- its entries (and the massage entries' trigger points): no INSERT, UPDATE or DELETE
  while the note they belong to is signed;
- addenda: append-only, never updated or deleted.

SQLite has no such guard; the services refuse the same changes there.
"""

from django.db import migrations

SESSION = "treatment_sessions_treatmentsession"
ENTRY_TABLES = (
    "treatment_sessions_artentry",
    "treatment_sessions_massageentry",
    "treatment_sessions_acupunctureentry",
    "treatment_sessions_homecareentry",
)
TRIGGER_POINTS = "treatment_sessions_massageentry_trigger_points"
ADDENDA = "treatment_sessions_addendum"

FUNCTIONS = """
CREATE OR REPLACE FUNCTION treatment_note_locked() RETURNS trigger AS $$
BEGIN
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
    RAISE EXCEPTION 'addenda are append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

TRIGGERS = "\n".join(
    [
        f"CREATE TRIGGER treatment_note_locked BEFORE UPDATE OR DELETE ON {SESSION} "
        "FOR EACH ROW EXECUTE FUNCTION treatment_note_locked();",
        *(
            f"CREATE TRIGGER treatment_entry_locked BEFORE INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION treatment_entry_locked();"
            for table in ENTRY_TABLES
        ),
        f"CREATE TRIGGER treatment_trigger_point_locked BEFORE INSERT OR UPDATE OR DELETE ON {TRIGGER_POINTS} "
        "FOR EACH ROW EXECUTE FUNCTION treatment_trigger_point_locked();",
        f"CREATE TRIGGER treatment_addendum_append_only BEFORE UPDATE OR DELETE ON {ADDENDA} "
        "FOR EACH ROW EXECUTE FUNCTION treatment_addendum_append_only();",
    ]
)

DROP = "\n".join(
    [
        f"DROP TRIGGER IF EXISTS treatment_note_locked ON {SESSION};",
        *(f"DROP TRIGGER IF EXISTS treatment_entry_locked ON {table};" for table in ENTRY_TABLES),
        f"DROP TRIGGER IF EXISTS treatment_trigger_point_locked ON {TRIGGER_POINTS};",
        f"DROP TRIGGER IF EXISTS treatment_addendum_append_only ON {ADDENDA};",
        "DROP FUNCTION IF EXISTS treatment_note_locked();",
        "DROP FUNCTION IF EXISTS treatment_entry_locked();",
        "DROP FUNCTION IF EXISTS treatment_trigger_point_locked();",
        "DROP FUNCTION IF EXISTS treatment_addendum_append_only();",
    ]
)


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTIONS + TRIGGERS, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("treatment_sessions", "0002_treatment_notes")]

    operations = [migrations.RunPython(forwards, backwards)]
