"""docker-compose.yml and the lock files can't be run here as an operator would (no Docker
engine); they are read and checked, and what can be run of them is run: the services'
dependency order, the healthchecks' commands against the real settings, the two Redis roles,
the proxy in front of web. tests/test_image.py replays the image and the web healthcheck."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.processes import ROOT, manage, project_env

APP_SERVICES = ("web", "worker", "beat")


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _services() -> dict:
    return _compose()["services"]


def test_compose_declares_every_service_of_the_deployment():
    services = _services()
    assert {"db", "redis", "cache", "migrate", "web", "worker", "beat", "proxy"} <= set(services)
    assert services["db"]["image"].startswith("postgres:16")
    assert "healthcheck" in services["db"]
    assert "pgdata:/var/lib/postgresql/data" in services["db"]["volumes"]


def test_web_worker_beat_and_migrate_share_one_image_and_environment():
    services = _services()
    names = (*APP_SERVICES, "migrate")
    assert len({services[name]["image"] for name in names}) == 1
    envs = [services[name]["environment"] for name in names]
    assert all(env == envs[0] for env in envs)
    env = envs[0]
    assert env["DJANGO_ENV"] == "production"
    assert env["DATABASE_URL"].startswith("postgres://clinic:${POSTGRES_PASSWORD:?")
    assert env["DATABASE_URL"].endswith("@db:5432/clinic")


def test_every_app_service_waits_for_the_one_shot_migrate_which_waits_for_the_data_stores():
    services = _services()
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert all(depends[store] == {"condition": "service_healthy"} for store in ("db", "redis", "cache")), name
    migrate = services["migrate"]
    assert migrate["restart"] == "no"
    assert "migrate" not in migrate["depends_on"]
    assert migrate["command"][-1] == "python manage.py migrate --no-input && python manage.py load_catalogs"


def test_a_reverse_proxy_is_the_only_way_in_and_passes_to_web():
    services = _services()
    proxy = services["proxy"]
    assert proxy["image"].startswith("caddy:2")
    assert proxy["ports"] == ["80:80", "443:443"]
    assert proxy["depends_on"] == {"web": {"condition": "service_healthy"}}
    assert "healthcheck" in proxy
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert re.search(r"^\{\$SITE_ADDRESS\} \{", caddyfile, flags=re.MULTILINE)
    assert "reverse_proxy web:8000" in caddyfile
    # Nothing publishes a port but the proxy (and the development mail catcher).
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"proxy", "mail"}
    # The app trusts exactly the one hop the proxy adds, and the scheme it reports.
    env = services["web"]["environment"]
    assert (env["TRUSTED_PROXIES"], env["SECURE_PROXY_SSL_HEADER"]) == ("1", "true")


def test_web_worker_and_beat_have_healthchecks_that_ask_what_matters():
    services = _services()
    web = services["web"]["healthcheck"]["test"]
    assert web[:3] == ["CMD", "python", "-c"]
    assert "/healthz" in web[3]
    assert "os.environ['ALLOWED_HOSTS'].split(',')[0]" in web[3]  # sent with a host the app serves
    assert "headers={'Host': host}" in web[3]
    worker = services["worker"]["healthcheck"]["test"]
    assert worker[0] == "CMD-SHELL"
    assert worker[1].startswith("celery -A clinic inspect ping --destination celery@$$HOSTNAME")
    beat = services["beat"]["healthcheck"]["test"]
    assert beat == ["CMD", "python", "manage.py", "heartbeat_check", "beat", "--max-age", "180"]
    assert services["beat"]["healthcheck"]["start_period"] == "90s"


@pytest.mark.processes
def test_the_health_probe_is_exempt_from_the_https_redirect_in_production():
    show = "from django.conf import settings as s; import re; print([bool(re.search(p, 'healthz')) for p in s.SECURE_REDIRECT_EXEMPT], s.SECURE_SSL_REDIRECT)"  # noqa: E501
    env = project_env(DJANGO_ENV="production", SECRET_KEY="x" * 60, ALLOWED_HOSTS="clinic.example")
    result = manage("shell", "-c", show, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[True, False, False] True"


def test_broker_and_cache_are_separate_redis_servers_with_the_eviction_each_needs():
    services = _services()
    env = services["web"]["environment"]
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["REDIS_CACHE_URL"] == "redis://cache:6379/0"
    broker = services["redis"]["command"]
    assert broker[broker.index("--maxmemory-policy") + 1] == "noeviction"
    assert broker[broker.index("--appendonly") + 1] == "yes"
    cache = services["cache"]["command"]
    assert cache[cache.index("--maxmemory-policy") + 1] == "allkeys-lru"
    assert "--maxmemory" in cache


def test_production_mail_goes_to_the_configured_smtp_and_the_catcher_is_development_only():
    services = _services()
    assert services["mail"]["profiles"] == ["dev"]
    for name in (*APP_SERVICES, "migrate"):
        env = services[name]["environment"]
        assert "EMAIL_HOST" not in env, name  # from .env: the operator's SMTP server
        assert "mail" not in services[name]["depends_on"]


def test_commands_point_at_real_entry_points():
    services = _services()
    assert services["web"]["command"] == ["gunicorn", "--config", "deploy/gunicorn.conf.py", "clinic.wsgi:application"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "clinic", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "clinic", "beat"]
    assert (ROOT / "clinic" / "wsgi.py").exists()
    assert (ROOT / "deploy" / "gunicorn.conf.py").exists()
    assert (ROOT / "clinic" / "management" / "commands" / "heartbeat_check.py").exists()


def test_dockerfile_installs_the_hashed_lock_as_an_unprivileged_user():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --require-hashes --only-binary=:all: --no-deps -r requirements.txt" in dockerfile
    assert "USER clinic" in dockerfile


def _locked(path: str) -> dict[str, list[str]]:
    """name -> hashes of each `name==version` entry of a lock file."""
    entries: dict[str, list[str]] = {}
    current = None
    for line in (ROOT / path).read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==\S+", line)
        if match:
            current = match.group(1).lower().replace("_", "-")
            entries[current] = []
        hashed = re.search(r"--hash=sha256:([0-9a-f]{64})", line)
        if hashed and current:
            entries[current].append(hashed.group(1))
    return entries


def test_the_lock_files_pin_every_package_with_hashes_and_keep_development_tools_out_of_the_image():
    runtime, development = _locked("requirements.txt"), _locked("requirements-dev.txt")
    assert runtime
    assert all(hashes for hashes in runtime.values()), [name for name, hashes in runtime.items() if not hashes]
    assert all(hashes for hashes in development.values())
    for tool in ("honcho", "pytest", "ruff", "playwright", "pip-tools", "schemathesis"):
        assert tool not in runtime, tool
        assert tool in development, tool
    # `make venv` installs the development lock alone (--require-hashes needs one closed set):
    # it holds the runtime set at the same versions.
    assert set(runtime) <= set(development)
    requirements = (ROOT / "requirements.txt").read_text()
    for name in runtime:
        version = re.search(rf"^{re.escape(name)}==(\S+)", requirements, flags=re.MULTILINE | re.IGNORECASE)
        if version:
            dev = (ROOT / "requirements-dev.txt").read_text()
            assert re.search(rf"^{re.escape(name)}=={re.escape(version.group(1))} ", dev, flags=re.M | re.I), name
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet --require-hashes -r requirements-dev.txt" in makefile
    assert "pip-compile --quiet --generate-hashes" in makefile


def test_env_example_lists_every_variable_the_settings_and_compose_read():
    settings_source = (ROOT / "clinic" / "settings.py").read_text()
    read = set(re.findall(r'env_\w+\(\s*"([A-Z_]+)"', settings_source))
    read |= set(re.findall(r'^    "([A-Z_]+)": "production needs', settings_source, flags=re.MULTILINE))
    read |= set(re.findall(r"\$\{([A-Z_]+):\?", (ROOT / "docker-compose.yml").read_text()))
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z_]+)=", example, flags=re.MULTILINE))
    assert {"POSTGRES_PASSWORD", "SITE_ADDRESS", "TRUSTED_PROXIES", "SENTRY_DSN", "METRICS_TOKEN"} <= read
    assert read - listed == set(), f"missing from .env.example: {sorted(read - listed)}"
