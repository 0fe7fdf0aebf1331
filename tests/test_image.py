"""The image serves its static files: the Dockerfile's collectstatic, replayed by hand.

There is no Docker engine here, so the test reads the Dockerfile's collectstatic step, runs
exactly that command (its environment included) into a temporary STATIC_ROOT, then renders
the pages that need static files with production's manifest storage over what it wrote. A
collectstatic run under development settings writes no manifest, and production's storage
then fails those pages with "Missing staticfiles manifest entry" (a 500).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.processes import ROOT, project_env

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
