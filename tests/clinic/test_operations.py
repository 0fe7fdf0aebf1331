"""Deployment procedures from docs/operations.md, carried out on the local PostgreSQL."""

from __future__ import annotations

import shutil
import subprocess
import uuid

import psycopg
import pytest
from django.db import connection

from clinic.models import AuditAction, AuditEvent
from clinic.security.audit import audit_checkpoint_record, audit_record, audit_verify
from tests.factories import AppointmentFactory, PatientFactory
from tests.processes import ROOT, manage, project_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.processes]

TABLES = ["clinic_clinic", "patients_patient", "treatment_sessions_appointment", "clinic_auditevent"]


def _server_dsn(dbname: str) -> str:
    params = connection.settings_dict
    return f"host={params['HOST'] or '127.0.0.1'} port={params['PORT'] or 5432} user={params['USER']} dbname={dbname}"


def _counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}  # noqa: S608


def test_backup_restores_into_a_fresh_database_with_the_same_rows_and_an_intact_audit_chain(clinic, tmp_path):
    for patient in PatientFactory.create_batch(5, clinic=clinic):
        AppointmentFactory(clinic=clinic, patient=patient)
        audit_record(action=AuditAction.VIEW, obj=patient)
    source = connection.settings_dict["NAME"]
    restored = f"restored_{uuid.uuid4().hex[:10]}"
    dump = tmp_path / "clinic.dump"
    base = ["-h", connection.settings_dict["HOST"] or "127.0.0.1", "-U", connection.settings_dict["USER"]]
    assert shutil.which("pg_dump"), "pg_dump is needed (Debian package postgresql-client)"
    subprocess.run(["pg_dump", *base, "--format=custom", "--no-owner", f"--file={dump}", source], check=True)
    subprocess.run(["createdb", *base, restored], check=True)
    try:
        subprocess.run(["pg_restore", *base, "--no-owner", f"--dbname={restored}", str(dump)], check=True)
        assert _counts(_server_dsn(restored)) == _counts(_server_dsn(source))
        url = f"postgres://{connection.settings_dict['USER']}@127.0.0.1:5432/{restored}"
        result = manage("verify_audit", env=project_env(DATABASE_URL=url))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "intact (5 events)" in result.stdout
    finally:
        subprocess.run(["dropdb", *base, "--if-exists", restored], check=True)


def _run_roles_script(owner: str, app: str) -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", connection.settings_dict["USER"], "-d", connection.settings_dict["NAME"],
         "-q", "-v", f"owner_role={owner}", "-v", f"app_role={app}", "-v", "ON_ERROR_STOP=1",
         "-f", str(ROOT / "deploy" / "postgres-roles.sql")],
        check=True,
    )  # fmt: skip


@pytest.fixture
def deploy_roles():
    """Run deploy/postgres-roles.sql on the test database as the guide says; yield (owner, app).

    Roles are cluster-wide and other test databases share the cluster, so the names carry this
    database's name. Afterwards ownership goes back to the test user and both roles are dropped,
    so later tests (and --reuse-db runs) find the database as migrate left it.
    """
    name = connection.settings_dict["NAME"]
    owner, app = f"clinic_owner_{name}"[:63], f"clinic_app_{name}"[:63]
    dsn = _server_dsn(name)
    _run_roles_script(owner, app)
    try:
        yield owner, app
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'REASSIGN OWNED BY "{owner}" TO "{connection.settings_dict["USER"]}"')
            for role in (owner, app):
                conn.execute(f'DROP OWNED BY "{role}"')
                conn.execute(f'DROP ROLE "{role}"')


def test_application_role_can_add_but_never_change_audit_events(clinic, deploy_roles):
    audit_record(action=AuditAction.VIEW, clinic=clinic)
    _, role = deploy_roles
    dsn = _server_dsn(connection.settings_dict["NAME"])
    with psycopg.connect(dsn) as conn:
        conn.execute(f'SET ROLE "{role}"')
        assert conn.execute("SELECT count(*) FROM clinic_auditevent").fetchone()[0] == 1
        conn.execute("UPDATE patients_patient SET given_name = given_name")  # ordinary tables stay writable
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE clinic_auditevent SET reason = 'x'")
        conn.rollback()
        conn.execute(f'SET ROLE "{role}"')
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM clinic_auditevent")


@pytest.mark.parametrize(
    "attack",
    [
        "TRUNCATE clinic_auditevent",
        "TRUNCATE clinic_auditcheckpoint",
        "TRUNCATE patients_patient",
        "DELETE FROM clinic_auditevent",
        "DELETE FROM clinic_auditcheckpoint",
        "UPDATE clinic_auditcheckpoint SET event_count = 0",
        "SET session_replication_role = replica",
        "ALTER TABLE clinic_auditevent DISABLE TRIGGER ALL",
        "CREATE TABLE clinic_shadow (id int)",
    ],
)
def test_application_role_cannot_get_around_the_append_only_audit(clinic, deploy_roles, attack):
    audit_record(action=AuditAction.VIEW, clinic=clinic)
    _, role = deploy_roles
    with psycopg.connect(_server_dsn(connection.settings_dict["NAME"])) as conn:
        conn.execute(f'SET ROLE "{role}"')
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(attack)
        conn.rollback()
    assert AuditEvent.objects.count() == 1


def test_rerunning_the_roles_script_takes_back_broader_grants_given_since(clinic, deploy_roles):
    owner, role = deploy_roles
    with psycopg.connect(_server_dsn(connection.settings_dict["NAME"]), autocommit=True) as conn:
        conn.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{role}"')
        conn.execute(f'GRANT "{owner}" TO "{role}"')
    _run_roles_script(owner, role)
    with psycopg.connect(_server_dsn(connection.settings_dict["NAME"])) as conn:
        # (SET ROLE from a superuser session may pick any role, so membership is read, not tried.)
        assert not conn.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", [role, owner]).fetchone()[0]
        for attack in ("TRUNCATE patients_patient", "TRUNCATE clinic_auditevent", "DELETE FROM clinic_auditevent"):
            conn.execute(f'SET ROLE "{role}"')
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(attack)
            conn.rollback()


def test_application_role_records_audit_events_and_checkpoints_through_the_app(clinic, deploy_roles):
    _, role = deploy_roles
    with connection.cursor() as cursor:
        cursor.execute(f'SET ROLE "{role}"')
    try:
        audit_record(action=AuditAction.VIEW, clinic=clinic)
        event = audit_record(action=AuditAction.VIEW, clinic=clinic)
        written = audit_checkpoint_record()
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == role
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
    assert [(c.last_event_id, c.event_count) for c in written] == [(event.id, 2)]
    assert audit_verify(clinic_id=clinic.id) == []
