"""The image, replayed by hand: there is no Docker engine here.

- The Dockerfile's collectstatic step, run exactly (its environment included) into a temporary
  STATIC_ROOT, then the pages that need static files rendered with production's manifest
  storage over what it wrote. A collectstatic run under development settings writes no
  manifest, and production's storage then fails those pages with "Missing staticfiles manifest
  entry" (a 500).
- The whole image: the Dockerfile's pip install into a new virtualenv (hashes required, wheels
  only, nothing outside the lock), its collectstatic, and its CMD (gunicorn with the image's
  config) under production settings; then the compose web healthcheck, /admin/login/ through
  the proxy headers, a static file, /readyz and /metrics.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from tests.processes import ROOT, PrivateRedis, free_port, project_env, stop_process, wait_for

PRODUCTION_STATIC = "whitenoise.storage.CompressedManifestStaticFilesStorage"


def _dockerfile_collectstatic() -> tuple[dict[str, str], list[str]]:
    """The environment and command of the Dockerfile's RUN step that runs collectstatic."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    (step,) = [line for line in text.splitlines() if line.startswith("RUN ") and "collectstatic" in line]
    command = next(part for part in step[len("RUN ") :].split("&&") if "collectstatic" in part)
    words = shlex.split(command)
    env = {}
    while re.fullmatch(r"[A-Z_]+=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    return env, words


def test_the_dockerfile_collects_static_files_under_production_settings():
    env, command = _dockerfile_collectstatic()
    assert env["DJANGO_ENV"] == "production"
    assert command[:3] == ["python", "manage.py", "collectstatic"]


def test_the_docker_build_context_leaves_out_secrets_local_data_and_history():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", "var/", ".git", ".venv", "**/__pycache__", ".pytest_cache/", ".ruff_cache/"} <= ignored
    assert "!.env.example" in ignored


@pytest.mark.processes
@pytest.mark.django_db
def test_admin_login_and_api_docs_render_with_the_manifest_the_image_build_writes(tmp_path, settings, clinic):
    env, command = _dockerfile_collectstatic()
    # As the build does it (VAR_DIR is /app/var in the image; STATIC_ROOT is VAR_DIR/static).
    build_env = project_env(**env, VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE=None)
    result = subprocess.run(
        [sys.executable, *command[1:]], cwd=ROOT, env=build_env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr

    settings.STATIC_ROOT = tmp_path / "static"
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": PRODUCTION_STATIC}}
    settings.DEBUG = False
    settings.API_DOCS_PUBLIC = False
    browser = Client(raise_request_exception=True)
    login = browser.get("/admin/login/")
    assert login.status_code == 200
    assert re.search(r"/static/admin/css/base\.[0-9a-f]{12}\.css", login.content.decode())

    staff = get_user_model().objects.create_superuser("ops", "ops@example.com", "x-Long-passw0rd!")
    browser.force_login(staff)
    docs = browser.get("/api/docs/")
    assert docs.status_code == 200, docs.content[:500]
    assert re.search(
        r"/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui\.[0-9a-f]{12}\.css", docs.content.decode()
    )


# --- the whole image, replayed -------------------------------------------------------------


def _dockerfile_instructions() -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def _dockerfile_pip_install() -> list[str]:
    (step,) = [line for line in _dockerfile_instructions() if line.startswith("RUN pip install")]
    return shlex.split(step[len("RUN ") :])


def _dockerfile_cmd() -> list[str]:
    (step,) = [line for line in _dockerfile_instructions() if line.startswith("CMD ")]
    return json.loads(step[len("CMD ") :])


def _dockerfile_env() -> dict[str, str]:
    (step,) = [line for line in _dockerfile_instructions() if line.startswith("ENV ")]
    return dict(word.split("=", 1) for word in shlex.split(step[len("ENV ") :]))


def test_the_image_installs_the_hashed_lock_from_wheels_only_and_runs_gunicorn_with_its_config():
    assert _dockerfile_pip_install() == [
        "pip", "install", "--require-hashes", "--only-binary=:all:", "--no-deps", "-r", "requirements.txt",
    ]  # fmt: skip
    assert _dockerfile_cmd() == ["gunicorn", "--config", "deploy/gunicorn.conf.py", "clinic.wsgi:application"]


def _get(url: str, **headers: str) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - the local server of this test

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.mark.slow
@pytest.mark.processes
@pytest.mark.django_db  # the test database exists (the server below connects to it)
def test_the_images_steps_by_hand_serve_admin_login_under_production_settings(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bin_dir = venv / "bin"
    # RUN pip install ... (the lock's hashes, wheels only), from the repository as the build context.
    install = subprocess.run(
        [str(bin_dir / "pip"), *_dockerfile_pip_install()[1:]],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-3000:]
    assert subprocess.run([str(bin_dir / "pip"), "check"], capture_output=True, timeout=120).returncode == 0
    # Development tools are not in the image.
    assert not (bin_dir / "honcho").exists()
    assert not (bin_dir / "pytest").exists()

    image_env = {**_dockerfile_env(), "VAR_DIR": str(tmp_path / "var")}
    image_env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "prometheus")
    base_env = project_env(DJANGO_SETTINGS_MODULE=None, PYTHONPATH=None, PATH=f"{bin_dir}:{os.environ['PATH']}")
    build_env, collect = _dockerfile_collectstatic()
    collected = subprocess.run(
        [str(bin_dir / "python"), *collect[1:]], cwd=ROOT, env={**base_env, **image_env, **build_env},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert collected.returncode == 0, collected.stderr

    redis = PrivateRedis(tmp_path)
    redis.start()
    port = free_port()
    test_db = connection.settings_dict["NAME"]  # the test database (settings keep the configured name)
    token = secrets.token_urlsafe(32)
    run_env = {
        **base_env,
        **image_env,
        # What docker-compose.yml and .env give the web service.
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "clinic.example,www.clinic.example",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{test_db}",
        "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        "REDIS_CACHE_URL": f"redis://127.0.0.1:{redis.port}/1",
        "TRUSTED_PROXIES": "1",
        "SECURE_PROXY_SSL_HEADER": "true",
        "METRICS_TOKEN": token,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
    }
    web = subprocess.Popen(
        _dockerfile_cmd(), cwd=ROOT, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:

        def serving() -> bool:
            if web.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{stop_process(web)}")
            try:
                return _get(base + "/healthz", Host="clinic.example")[0] == 200
            except OSError:  # refused or timed out while the workers boot
                return False

        wait_for(serving, timeout=120, what="gunicorn")
        # The compose healthcheck of web, exactly, pointed at this port.
        compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
        check = compose["services"]["web"]["healthcheck"]["test"]
        assert check[:3] == ["CMD", "python", "-c"]
        probe = subprocess.run(
            [str(bin_dir / "python"), "-c", check[3].replace("127.0.0.1:8000", f"127.0.0.1:{port}")],
            env=run_env, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert probe.returncode == 0, probe.stderr

        # As Caddy forwards a browser's request: https, the client's address.
        status, _, page = _get(
            base + "/admin/login/", Host="clinic.example", **{"X-Forwarded-Proto": "https"},
            **{"X-Forwarded-For": "203.0.113.9"},
        )  # fmt: skip
        assert status == 200
        stylesheet = re.search(r"/static/admin/css/base\.[0-9a-f]{12}\.css", page.decode()).group(0)
        status, headers, _ = _get(base + stylesheet, Host="clinic.example", **{"X-Forwarded-Proto": "https"})
        assert status == 200
        assert "max-age=315360000" in headers.get("Cache-Control", "")
        # Plain http from outside the probes is sent to https.
        status, headers, _ = _get(base + "/admin/login/", Host="clinic.example")
        assert (status, headers["Location"]) == (301, "https://clinic.example/admin/login/")
        # A host the site does not serve is refused.
        assert _get(base + "/healthz", Host="evil.example")[0] == 400

        status, _, body = _get(base + "/readyz", Host="clinic.example")
        ready = json.loads(body)
        assert ready["database"] == {"ok": True, "detail": "postgresql"}, ready
        assert ready["broker"] == {"ok": True, "detail": "redis"}, ready
        status, _, body = _get(base + "/metrics", Host="clinic.example", Authorization=f"Bearer {token}")
        assert status == 200
        assert 'clinic_http_requests_total{method="GET",status="200",view="admin:login"}' in body.decode()
    finally:
        output = stop_process(web)
        redis.kill()
    # One JSON line per request, with the client's address behind the proxy.
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    login = [line for line in lines if line.get("view") == "admin:login" and line.get("status") == 200]
    assert login, output[-3000:]
    assert login[0]["client_ip"] == "203.0.113.9"
    assert login[0]["request_id"]
