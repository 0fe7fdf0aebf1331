"""Settings read from the environment: good values parse, bad ones stop start-up with one clear line."""

from __future__ import annotations

import json
import secrets
import subprocess
import time

import pytest
import redis
from kombu import Connection

from clinic import env
from clinic.redis_sentinel import SentinelPool
from tests.processes import PrivateRedis, free_port, manage, project_env, wait_for


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("YES", True), ("on", True), ("0", False), ("false", False), ("off", False)],
)
def test_env_bool_reads_common_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("SOME_FLAG", raw)
    assert env.env_bool("SOME_FLAG", default=not expected) is expected


def test_env_bool_rejects_anything_else(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(env.EnvError, match="SOME_FLAG: expected a boolean"):
        env.env_bool("SOME_FLAG", default=False)


def test_env_int_rejects_words_and_values_below_minimum(monkeypatch):
    monkeypatch.setenv("SOME_NUMBER", "ten")
    with pytest.raises(env.EnvError, match="SOME_NUMBER: expected a whole number"):
        env.env_int("SOME_NUMBER", 1)
    monkeypatch.setenv("SOME_NUMBER", "-3")
    with pytest.raises(env.EnvError, match="SOME_NUMBER: must be at least 0"):
        env.env_int("SOME_NUMBER", 1, minimum=0)


def test_database_url_parses_postgres_and_sqlite(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://app:pw@db.internal:5433/clinic")
    config = env.env_database("DATABASE_URL", "sqlite:///x")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.internal", 5433, "clinic")
    monkeypatch.delenv("DATABASE_URL")
    assert env.env_database("DATABASE_URL", "sqlite:////tmp/a.sqlite3")["ENGINE"] == "django.db.backends.sqlite3"


@pytest.mark.parametrize(
    "url", ["mysql://root@localhost/x", "postgres://localhost:notaport/x", "not a url", "postgres://host:5432/"]
)
def test_database_url_rejects_unusable_values(monkeypatch, url):
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(env.EnvError, match="^DATABASE_URL: "):
        env.env_database("DATABASE_URL", "sqlite:///x")


@pytest.mark.parametrize("url", ["http://localhost:6379", "redis://localhost:port/0", "redis://localhost:6379/zero"])
def test_redis_url_rejects_unusable_values(monkeypatch, url):
    monkeypatch.setenv("REDIS_URL", url)
    with pytest.raises(env.EnvError, match="^REDIS_URL: "):
        env.env_redis_url("REDIS_URL")


def test_redis_url_unset_means_embedded_broker(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert env.env_redis_url("REDIS_URL") is None
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/2")
    assert env.env_redis_url("REDIS_URL") == "redis://127.0.0.1:6379/2"


@pytest.mark.processes
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "mysql://root@localhost/clinic"),
        ("REDIS_URL", "http://localhost:6379"),
        ("EMAIL_PORT", "smtp"),
        ("TIME_ZONE", "Mars/Olympus_Mons"),
        ("AUDIT_CHECKPOINT_KEY", "short"),
        ("TRUSTED_PROXIES", "proxy.example"),
        ("REDIS_URL", "sentinel://:pw@sentinel-a:26379/1;sentinel://sentinel-b:26379/2"),
    ],
)
def test_bad_variable_stops_start_up_with_one_line_naming_it(variable, value):
    result = manage("check", env=project_env(**{variable: value}))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"configuration error: {variable}")
    assert "Traceback" not in result.stderr


@pytest.mark.processes
def test_production_refuses_to_start_without_a_real_secret_key():
    result = manage("check", env=project_env(DJANGO_ENV="production", SECRET_KEY=None, ALLOWED_HOSTS="clinic.example"))
    assert result.returncode == 2
    assert result.stderr.startswith("configuration error: SECRET_KEY")


@pytest.mark.processes
def test_production_settings_pass_the_deploy_check():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env=project_env(DJANGO_ENV="production", SECRET_KEY=secrets.token_urlsafe(64), ALLOWED_HOSTS="clinic.example"),
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.processes
def test_production_defaults_are_closed():
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings as s; print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0,"
        " s.EMAIL_BACKEND.endswith('smtp.EmailBackend'))",
        env=project_env(DJANGO_ENV="production", SECRET_KEY=secrets.token_urlsafe(64), ALLOWED_HOSTS="x.example"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False True True True"


@pytest.mark.processes
def test_the_api_schema_is_private_in_production_and_public_elsewhere():
    show = ("shell", "-c", "from django.conf import settings as s; print(s.API_DOCS_PUBLIC)")
    production = project_env(DJANGO_ENV="production", SECRET_KEY=secrets.token_urlsafe(64), ALLOWED_HOSTS="x.example")
    result = manage(*show, env=production)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
    result = manage(*show, env=project_env(DJANGO_ENV="development"))
    assert result.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.processes
def test_public_links_follow_the_served_port_in_development():
    show = ("shell", "-c", "from django.conf import settings as s; print(s.PUBLIC_BASE_URL)")
    result = manage(*show, env=project_env(DJANGO_ENV="development", PORT="8801", PUBLIC_BASE_URL=None))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "http://127.0.0.1:8801"
    chosen = project_env(DJANGO_ENV="development", PORT="8801", PUBLIC_BASE_URL="https://clinic.example/")
    assert manage(*show, env=chosen).stdout.strip().splitlines()[-1] == "https://clinic.example"


# --- fail closed: production needs PostgreSQL and Redis -------------------------------------

PRODUCTION = {"DJANGO_ENV": "production", "ALLOWED_HOSTS": "clinic.example"}
SHOW_REDIS = (
    "shell",
    "-c",
    "from django.conf import settings as s; import json;"
    " print(json.dumps([s.CELERY_BROKER_URL, s.CACHES['default']['LOCATION'], s.CELERY_BROKER_TRANSPORT_OPTIONS,"
    " s.CACHES['default']['OPTIONS']]))",
)


@pytest.mark.processes
def test_production_refuses_to_start_without_database_url_and_redis_url_naming_each():
    result = manage(
        "check", env=project_env(**PRODUCTION, SECRET_KEY=secrets.token_urlsafe(64), DATABASE_URL=None, REDIS_URL=None)
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "configuration error: DATABASE_URL: production needs PostgreSQL (postgres://user:password@host:5432/dbname)",
        "configuration error: REDIS_URL: production needs Redis for the task broker"
        " (redis://host:6379/0 or sentinel://host:26379/0)",
    ]
    result = manage("check", env=project_env(**PRODUCTION, SECRET_KEY=secrets.token_urlsafe(64), REDIS_URL=None))
    assert result.returncode == 2
    assert [line.split(":")[1] for line in result.stderr.splitlines()] == [" REDIS_URL"]


@pytest.mark.processes
def test_production_refuses_the_embedded_sqlite_database():
    production = project_env(**PRODUCTION, SECRET_KEY=secrets.token_urlsafe(64), DATABASE_URL="sqlite:////tmp/x.db")
    result = manage("check", env=production)
    assert result.returncode == 2
    assert result.stderr.startswith("configuration error: DATABASE_URL: production needs PostgreSQL")


@pytest.mark.processes
def test_production_keeps_the_cache_out_of_the_brokers_redis_database():
    key = secrets.token_urlsafe(64)
    result = manage(*SHOW_REDIS, env=project_env(**PRODUCTION, SECRET_KEY=key, REDIS_URL="redis://redis:6379/0"))
    assert result.returncode == 0, result.stderr
    broker, cache, _, _ = json.loads(result.stdout.strip().splitlines()[-1])
    assert (broker, cache) == ("redis://redis:6379/0", ["redis://redis:6379/1"])
    # Its own URL (another server) is taken as is; the broker's own database is refused.
    other = project_env(**PRODUCTION, SECRET_KEY=key, REDIS_URL="redis://q:6379/0", REDIS_CACHE_URL="redis://c:6379/0")
    assert json.loads(manage(*SHOW_REDIS, env=other).stdout.strip().splitlines()[-1])[1] == ["redis://c:6379/0"]
    same = project_env(**PRODUCTION, SECRET_KEY=key, REDIS_URL="redis://q:6379/0", REDIS_CACHE_URL="redis://q:6379/0")
    result = manage("check", env=same)
    assert result.returncode == 2
    assert result.stderr.startswith("configuration error: REDIS_CACHE_URL: must not be the broker's database")


@pytest.mark.processes
def test_sentinel_urls_configure_the_broker_and_the_cache_with_the_master_name():
    sentinels = "sentinel://:pw@sentinel-a:26379/2;sentinel://:pw@sentinel-b:26379/2"
    production = project_env(**PRODUCTION, SECRET_KEY=secrets.token_urlsafe(64), REDIS_URL=sentinels)
    result = manage("check", env=production)
    assert result.stderr.startswith("configuration error: REDIS_SENTINEL_MASTER")
    result = manage(*SHOW_REDIS, env={**production, "REDIS_SENTINEL_MASTER": "clinic"})
    assert result.returncode == 0, result.stderr
    broker, cache, broker_options, cache_options = json.loads(result.stdout.strip().splitlines()[-1])
    assert broker == sentinels
    assert broker_options["master_name"] == "clinic"
    assert cache == ["sentinel://:pw@sentinel-a:26379/3;sentinel://:pw@sentinel-b:26379/3"]
    assert cache_options["pool_class"] == "clinic.redis_sentinel.SentinelPool"
    assert cache_options["master_name"] == "clinic"


@pytest.mark.processes
def test_the_cache_and_the_broker_reach_redis_through_a_real_sentinel(tmp_path, settings):
    """A private redis-server, a sentinel watching it, and the project's cache and Celery
    broker configured with sentinel:// URLs: both find the master and work."""
    master = PrivateRedis(tmp_path)
    master.start()
    port = free_port()
    (tmp_path / "sentinel.conf").write_text(
        f"port {port}\nbind 127.0.0.1\nsentinel monitor clinic 127.0.0.1 {master.port} 1\n"
    )
    sentinel = subprocess.Popen(
        ["redis-server", str(tmp_path / "sentinel.conf"), "--sentinel"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        pool = None

        def cache_works() -> bool:
            nonlocal pool
            try:
                pool = SentinelPool.from_url(f"sentinel://127.0.0.1:{port}/3", master_name="clinic", socket_timeout=2)
                client = redis.Redis(connection_pool=pool)
                client.set("probe", "1")
                return client.get("probe") == b"1"
            except (redis.exceptions.RedisError, OSError):
                time.sleep(0.2)
                return False

        wait_for(cache_works, timeout=15, what="the cache through the sentinel")
        with Connection(f"sentinel://127.0.0.1:{port}/4", transport_options={"master_name": "clinic"}) as conn:
            conn.ensure_connection(max_retries=3)
            queue = conn.SimpleQueue("sentinel-probe")
            queue.put({"hello": "sentinel"})
            assert queue.get(timeout=5).payload == {"hello": "sentinel"}
            queue.close()
    finally:
        if pool is not None:
            pool.disconnect()
        sentinel.kill()
        sentinel.wait(timeout=10)
        master.kill()
