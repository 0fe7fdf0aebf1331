"""The audit chain's head is anchored outside the chain, so cutting its end is detected.

The attacker here is the database owner (the test connection is a superuser): they get past
the append-only trigger the way an attacker would, with TRUNCATE (row triggers do not see
it) or `session_replication_role = replica`.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from clinic.celery import app
from clinic.models import AuditAction, AuditCheckpoint, AuditEvent
from clinic.security.audit import _digest, audit_record
from clinic.tasks import checkpoint_audit_chains

pytestmark = pytest.mark.django_db


def _as_superuser_without_triggers(sql: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params or [])
        cursor.execute("SET LOCAL session_replication_role = origin")


def _truncate(*tables: str) -> None:
    with connection.cursor() as cursor:
        # The test's transaction still holds deferred foreign-key checks, which TRUNCATE refuses.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"TRUNCATE {', '.join(tables)}")


def _verify_audit(*args: str) -> tuple[bool, str]:
    out = StringIO()
    try:
        call_command("verify_audit", *args, stdout=out)
    except CommandError as exc:
        return False, f"{out.getvalue()}{exc}"
    return True, out.getvalue()


def _events(clinic, count: int) -> list[AuditEvent]:
    return [audit_record(action=AuditAction.VIEW, clinic=clinic) for _ in range(count)]


def test_verify_audit_reports_a_truncated_audit_table(clinic):
    events = _events(clinic, 3)
    checkpoint_audit_chains()
    _truncate("clinic_auditevent")

    intact, output = _verify_audit()

    assert not intact
    assert f"clinic {clinic.id}: event {events[-1].id}: missing: the checkpoint of " in output
    assert "anchors 3 events up to this one, the table holds 0 of them" in output
    assert "intact" not in output


def test_verify_audit_reports_the_newest_events_deleted(clinic):
    events = _events(clinic, 4)
    checkpoint_audit_chains()
    _as_superuser_without_triggers("DELETE FROM clinic_auditevent WHERE id >= %s", [events[2].id])

    intact, output = _verify_audit()

    assert not intact
    assert f"clinic {clinic.id}: event {events[-1].id}: missing:" in output
    assert "anchors 4 events up to this one, the table holds 2 of them" in output


def test_verify_audit_reports_the_newest_event_rewritten_with_a_recomputed_hash(clinic):
    events = _events(clinic, 3)
    checkpoint_audit_chains()
    head = AuditEvent.objects.get(pk=events[-1].pk)
    head.reason = "nothing to see"
    head.hash = _digest(head)  # the chain alone holds: nothing links to the newest row
    _as_superuser_without_triggers(
        "UPDATE clinic_auditevent SET reason = %s, hash = %s WHERE id = %s", [head.reason, head.hash, head.id]
    )

    intact, output = _verify_audit()

    assert not intact
    assert f"clinic {clinic.id}: event {head.id}: does not match the checkpoint of " in output
    assert "(the row was replaced)" in output


def test_verify_audit_reports_a_checkpoint_rewritten_to_match_a_cut_chain(clinic):
    events = _events(clinic, 3)
    checkpoint_audit_chains()
    # Cut the newest event, then move the checkpoint back to the new head: a database-only
    # attacker can write the row but not the signature.
    _as_superuser_without_triggers("DELETE FROM clinic_auditevent WHERE id = %s", [events[-1].id])
    _as_superuser_without_triggers(
        "UPDATE clinic_auditcheckpoint SET last_event_id = %s, last_hash = %s, event_count = 2",
        [events[1].id, events[1].hash],
    )

    intact, output = _verify_audit()

    assert not intact
    assert f"clinic {clinic.id}: event {events[1].id}: checkpoint of " in output
    assert "does not carry a valid signature (forged or altered checkpoint)" in output


def test_verify_audit_reports_a_made_up_checkpoint(clinic):
    events = _events(clinic, 2)
    AuditCheckpoint.objects.create(
        clinic=clinic,
        last_event_id=events[-1].id,
        last_hash=events[-1].hash,
        event_count=2,
        created_at=events[-1].occurred_at,
        signature="0" * 64,
    )

    intact, output = _verify_audit()

    assert not intact
    assert "does not carry a valid signature (forged or altered checkpoint)" in output


def test_verify_audit_passes_untouched_chains_checked_against_their_checkpoints(clinic, other_clinic):
    _events(clinic, 2)
    _events(other_clinic, 1)
    audit_record(action=AuditAction.LOGIN)  # the sign-in chain has no clinic
    checkpoint_audit_chains()
    _events(clinic, 2)
    checkpoint_audit_chains()
    _events(clinic, 1)  # newer than every checkpoint: fine

    intact, output = _verify_audit()

    assert intact, output
    assert "Audit chain intact (7 events); 4 checkpoint(s) hold." in output


def test_checkpoint_task_run_twice_writes_one_checkpoint_per_grown_chain(clinic, other_clinic):
    _events(clinic, 3)
    _events(other_clinic, 2)

    assert checkpoint_audit_chains() == 2
    assert checkpoint_audit_chains() == 0
    assert AuditCheckpoint.objects.count() == 2

    newest = _events(clinic, 2)[-1]
    assert checkpoint_audit_chains() == 1
    assert checkpoint_audit_chains() == 0
    latest = AuditCheckpoint.objects.filter(clinic=clinic).order_by("-last_event_id").first()
    assert (latest.last_event_id, latest.last_hash, latest.event_count) == (newest.id, newest.hash, 5)


def test_checkpoint_task_does_not_anchor_a_chain_cut_behind_its_checkpoint(clinic):
    events = _events(clinic, 3)
    checkpoint_audit_chains()
    _as_superuser_without_triggers("DELETE FROM clinic_auditevent WHERE id = %s", [events[-1].id])

    assert checkpoint_audit_chains() == 0
    assert not _verify_audit()[0]


def test_database_refuses_to_edit_or_delete_checkpoints(clinic):
    _events(clinic, 1)
    checkpoint_audit_chains()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditCheckpoint.objects.update(event_count=0)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditCheckpoint.objects.all().delete()


def test_checkpoints_are_appended_to_the_checkpoint_file(clinic, settings, tmp_path):
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "audit" / "checkpoints.jsonl")
    first = _events(clinic, 2)[-1]
    checkpoint_audit_chains()
    checkpoint_audit_chains()
    second = _events(clinic, 1)[-1]
    checkpoint_audit_chains()

    lines = [json.loads(line) for line in (tmp_path / "audit" / "checkpoints.jsonl").read_text().splitlines()]

    assert [(line["clinic_id"], line["last_event_id"], line["event_count"]) for line in lines] == [
        (clinic.id, first.id, 2),
        (clinic.id, second.id, 3),
    ]
    assert _verify_audit()[0]


def test_verify_audit_finds_both_tables_truncated_from_the_checkpoint_file(clinic, settings, tmp_path):
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "checkpoints.jsonl")
    events = _events(clinic, 3)
    checkpoint_audit_chains()
    _truncate("clinic_auditevent", "clinic_auditcheckpoint")

    intact, output = _verify_audit()

    assert not intact
    assert (
        f"clinic {clinic.id}: the checkpoint through event {events[-1].id} in {settings.AUDIT_CHECKPOINT_FILE} "
        "is missing from the checkpoint table" in output
    )
    assert f"clinic {clinic.id}: event {events[-1].id}: missing:" in output


def test_verify_audit_checks_a_checkpoint_file_named_on_the_command_line(clinic, settings, tmp_path):
    copy = tmp_path / "copy.jsonl"
    settings.AUDIT_CHECKPOINT_FILE = str(copy)
    _events(clinic, 2)
    checkpoint_audit_chains()
    settings.AUDIT_CHECKPOINT_FILE = ""
    _truncate("clinic_auditevent", "clinic_auditcheckpoint")

    assert _verify_audit()[0]  # nothing left in the database to compare with
    intact, output = _verify_audit("--checkpoint-file", str(copy))
    assert not intact
    assert "the table holds 0 of them" in output


def test_verify_audit_reports_an_unreadable_line_in_the_checkpoint_file(clinic, settings, tmp_path):
    path = tmp_path / "checkpoints.jsonl"
    path.write_text('{"clinic_id": 1, "last_event_id": "many"}\n')
    settings.AUDIT_CHECKPOINT_FILE = str(path)

    intact, output = _verify_audit()

    assert not intact
    assert f"{path} line 1: not a checkpoint" in output


def test_checkpoint_task_is_on_the_beat_schedule():
    assert app.conf.beat_schedule["audit-checkpoint"]["task"] == checkpoint_audit_chains.name
