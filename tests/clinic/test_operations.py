"""Deployment procedures from docs/operations.md, carried out on the local PostgreSQL."""

from __future__ import annotations

import shutil
import subprocess
import uuid

import psycopg
import pytest
from django.db import connection

from clinic.audit import audit_record
from clinic.models import AuditAction
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


def test_application_role_can_add_but_never_change_audit_events(clinic):
    audit_record(action=AuditAction.VIEW, clinic=clinic)
    role = f"clinic_app_{connection.settings_dict['NAME'][-12:]}".replace("-", "_")
    dsn = _server_dsn(connection.settings_dict["NAME"])
    with psycopg.connect(dsn, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
            conn.execute(f'CREATE ROLE "{role}" NOLOGIN')
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", connection.settings_dict["USER"], "-d", connection.settings_dict["NAME"],
         "-v", f"app_role={role}", "-v", "ON_ERROR_STOP=1", "-q", "-f", str(ROOT / "deploy" / "postgres-app-role.sql")],
        check=True,
    )  # fmt: skip
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
