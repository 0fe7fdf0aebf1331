"""Test databases: migrate one template database once, then clone it for each test process.

Migrating costs a minute or more per pytest-xdist worker; `CREATE DATABASE ... TEMPLATE`
costs about a second. The template is named after the test database
(`test_<name>_template`) and carries a fingerprint of every app's migration files in its
comment: a changed, added or removed migration rebuilds it, and so does `--create-db`
(once per run, however many workers ask). A worker's own database records the same
fingerprint and is reused under `--reuse-db` while it still matches.

Workers and concurrent runs take turns through a file lock, as tests/processes.py does
for the broker; the clone happens under it too, since PostgreSQL refuses to copy a
template that another session is connected to.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import django
from django.apps import apps
from django.conf import settings
from django.db import connections

_STAMP = re.compile(r"^[0-9a-f]+ [0-9a-zA-Z-]+$")
# alias -> the template this process's test database was cloned from (see copy_of_template).
_templates: dict[str, str] = {}


def migrations_fingerprint() -> str:
    """A hash of every installed app's migration files (the project's and Django's own)."""
    digest = hashlib.sha256(django.get_version().encode())
    for app_config in sorted(apps.get_app_configs(), key=lambda config: config.label):
        folder = Path(app_config.path) / "migrations"
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.py")):
            digest.update(f"{app_config.label}:{path.relative_to(folder)}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _lock(key: str) -> Iterator[None]:
    name = hashlib.sha256(key.encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"clinic-tests-db-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _stamp_of(cursor, dbname: str) -> str | None:
    """The comment on a database ("<fingerprint> <run>"), "" when it has none, None when it is missing."""
    cursor.execute(
        "SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = %s", [dbname]
    )
    row = cursor.fetchone()
    return None if row is None else row[0]


def _set_stamp(cursor, creation, dbname: str, stamp: str) -> None:
    assert _STAMP.match(stamp), stamp  # inlined below: COMMENT takes no parameters
    cursor.execute(f"COMMENT ON DATABASE {creation._quote_name(dbname)} IS '{stamp}'")


def _build_template(connection, template: str, verbosity: int) -> None:
    """Django's own test database creation (migrate, post_migrate hooks, cache table) under the template's name."""
    settings_dict = connection.settings_dict
    original_name, original_test_name = settings_dict["NAME"], settings_dict["TEST"].get("NAME")
    settings_dict["TEST"]["NAME"] = template
    try:
        connection.creation.create_test_db(verbosity=verbosity, autoclobber=True, serialize=False, keepdb=False)
    finally:
        connection.close()
        settings.DATABASES[connection.alias]["NAME"] = settings_dict["NAME"] = original_name
        settings_dict["TEST"]["NAME"] = original_test_name


def setup_from_template(alias: str, *, run_id: str, rebuild: bool, keepdb: bool, verbosity: int) -> tuple:
    """Point `alias` at this process's test database, cloned from an up-to-date template.

    Returns the (connection, old name, destroy) triple that django.test.utils.teardown_databases takes.
    """
    connection = connections[alias]
    creation = connection.creation
    original_name = connection.settings_dict["NAME"]
    test_name = creation._get_test_db_name()  # with pytest-xdist's _gw<n> suffix
    template = f"test_{original_name}_template"
    fingerprint = migrations_fingerprint()
    host = f"{connection.settings_dict['HOST']}:{connection.settings_dict['PORT']}"

    with _lock(f"{host}/{template}"):
        with creation._nodb_cursor() as cursor:
            stamp = _stamp_of(cursor, template)
        current = stamp.split() if stamp else []
        built_now = False
        if not current or current[0] != fingerprint or (rebuild and current[1:] != [run_id]):
            if verbosity >= 1:
                creation.log(f"Migrating the template test database {template!r} (once for every worker)...")
            _build_template(connection, template, verbosity)
            with creation._nodb_cursor() as cursor:
                _set_stamp(cursor, creation, template, f"{fingerprint} {run_id}")
            built_now = True

        with creation._nodb_cursor() as cursor:
            mine = _stamp_of(cursor, test_name)
            reuse = keepdb and not rebuild and not built_now and mine and mine.split()[0] == fingerprint
            if not reuse:
                if verbosity >= 1:
                    creation.log(f"Cloning {template!r} into {test_name!r}...")
                cursor.execute(f"DROP DATABASE IF EXISTS {creation._quote_name(test_name)} WITH (FORCE)")
                cursor.execute(
                    f"CREATE DATABASE {creation._quote_name(test_name)} TEMPLATE {creation._quote_name(template)}"
                )
                _set_stamp(cursor, creation, test_name, f"{fingerprint} {run_id}")

    connection.close()
    settings.DATABASES[alias]["NAME"] = connection.settings_dict["NAME"] = test_name
    connection.ensure_connection()
    _templates[alias] = template
    return connection, original_name, not keepdb


def copy_of_template(suffix: str, alias: str = "default") -> str:
    """The URL of a database `test_<name>_<suffix>` for this checkout, created from the migrated
    template unless it already exists (whoever uses it migrates it forward). Needs a database
    test (the `db` fixture), which sets the template up."""
    connection = connections[alias]
    creation = connection.creation
    template = _templates[alias]
    name = f"{template.removesuffix('_template')}_{suffix}"
    host = f"{connection.settings_dict['HOST']}:{connection.settings_dict['PORT']}"
    with _lock(f"{host}/{template}"), creation._nodb_cursor() as cursor:
        if _stamp_of(cursor, name) is None:
            cursor.execute(f"CREATE DATABASE {creation._quote_name(name)} TEMPLATE {creation._quote_name(template)}")
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"
