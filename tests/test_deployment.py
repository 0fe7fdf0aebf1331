"""docker-compose.yml can't be run here (no Docker engine); it is read and checked instead."""

from __future__ import annotations

import yaml

from tests.processes import ROOT

APP_SERVICES = ("web", "worker", "beat")


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_declares_every_service_of_the_deployment():
    services = _compose()["services"]
    assert {"db", "redis", "web", "worker", "beat", "mail"} <= set(services)
    assert services["db"]["image"].startswith("postgres:16")
    assert "healthcheck" in services["db"]
    assert "pgdata:/var/lib/postgresql/data" in services["db"]["volumes"]


def test_web_worker_and_beat_share_one_image_and_environment():
    services = _compose()["services"]
    images = {services[name]["image"] for name in APP_SERVICES}
    envs = [services[name]["environment"] for name in APP_SERVICES]
    assert len(images) == 1
    assert all(env == envs[0] for env in envs)
    assert envs[0]["DJANGO_ENV"] == "production"
    assert envs[0]["DATABASE_URL"].startswith("postgres://")
    assert envs[0]["REDIS_URL"].startswith("redis://redis:")


def test_commands_point_at_real_entry_points():
    services = _compose()["services"]
    assert services["web"]["command"][:2] == ["gunicorn", "clinic.wsgi:application"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "clinic", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "clinic", "beat"]
    assert (ROOT / "clinic" / "wsgi.py").exists()


def test_dockerfile_installs_the_pinned_requirements():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install -r requirements.txt" in dockerfile
    assert "USER clinic" in dockerfile


def test_env_example_lists_every_variable_the_settings_read():
    import re

    settings_source = (ROOT / "clinic" / "settings.py").read_text()
    read = set(re.findall(r'env_\w+\(\s*"([A-Z_]+)"', settings_source))
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z_]+)=", example, flags=re.MULTILINE))
    assert read - listed == set(), f"missing from .env.example: {sorted(read - listed)}"
