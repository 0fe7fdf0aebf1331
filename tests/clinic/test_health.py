"""/healthz against the real database and broker, and against ones that are down."""

from __future__ import annotations

import json

import pytest

from tests.processes import manage, project_env

PROBE = (
    "import json; from django.test import Client; r = Client().get('/healthz');"
    " print(json.dumps({'status': r.status_code, 'body': r.json()}))"
)


def _probe(**env) -> dict:
    result = manage("shell", "-c", PROBE, env=project_env(**env))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_healthz_is_200_when_database_and_broker_answer(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["ok"] is True
    assert body["database"]["detail"] == "postgresql"
    assert body["broker"] == {"ok": True, "detail": "redis"}


@pytest.mark.processes
def test_healthz_is_503_naming_the_broker_when_redis_is_down(django_db_setup, settings):
    test_db = settings.DATABASES["default"]["NAME"]
    result = _probe(DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{test_db}", REDIS_URL="redis://127.0.0.1:1/0")
    assert result["status"] == 503
    assert result["body"]["broker"]["ok"] is False
    assert result["body"]["database"]["ok"] is True


@pytest.mark.processes
def test_healthz_is_503_naming_the_database_when_it_is_down():
    result = _probe(DATABASE_URL="postgres://postgres@127.0.0.1:1/nowhere")
    assert result["status"] == 503
    assert result["body"]["database"]["ok"] is False
    assert result["body"]["broker"]["ok"] is True
