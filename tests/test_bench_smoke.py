"""`make bench` in smoke mode: a few hundred rows, each scenario for a second or less.

It proves the benchmark still runs end to end (dataset, gunicorn with production
settings, every scenario, the report); the figures themselves are judged only in
real runs, never here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.databases import copy_of_template
from tests.processes import ROOT, project_env

pytestmark = [pytest.mark.slow, pytest.mark.processes]


def test_bench_smoke_runs_every_scenario_and_writes_a_report(tmp_path, db):
    # This checkout's own benchmark database, made from the migrated test template the first
    # time (so the benchmark's `migrate` has nothing to do); `db` sets the template up.
    env = project_env(BENCH_DATABASE_URL=copy_of_template("bench"))
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--scale", "smoke", "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    reports = list(tmp_path.glob("*-smoke.md"))
    assert len(reports) == 1
    text = reports[0].read_text()
    assert "baseline: single-row retrieve" in text
    assert "## Targets" in text
    summary = json.loads(next(tmp_path.glob("*-smoke.json")).read_text())
    assert summary["worker_peak_memory_mb"] > 0
    for name, figures in summary["scenarios"].items():
        assert figures["requests"] > 0, name
        assert figures["errors"] == 0, name
    # The growth step (the smoke dataset against itself): every front-desk kind measured alone on both.
    assert "## Growth: full dataset against 10% of it" in text
    assert "patient search by name prefix" in summary["growth"]
    for name, figures in summary["growth"].items():
        assert figures["alone_requests"] > 0, name
        assert figures["alone_errors"] == 0, name
