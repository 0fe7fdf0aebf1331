"""The import contract (pyproject.toml [tool.importlinter]) holds, and it would catch the core
importing a domain app: the check `make lint` runs is proved to fail on such an import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("clinic", "treatments", "patients", "intake", "sessions", "outcomes")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(tree / "pyproject.toml")],
        cwd=tree, capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def _copy_of_the_apps(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.copy(ROOT / "pyproject.toml", tree)
    for app in APPS:
        shutil.copytree(ROOT / app, tree / app, ignore=shutil.ignore_patterns("__pycache__", "templates", "static"))
    return tree


@pytest.mark.processes
def test_the_apps_import_only_downward():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.processes
def test_the_contract_fails_when_the_messaging_engine_imports_sessions(tmp_path):
    tree = _copy_of_the_apps(tmp_path)
    engine = tree / "clinic" / "messaging" / "outbox.py"
    engine.write_text(
        engine.read_text() + "\n\ndef _peek():\n    from sessions.models import Appointment\n\n    return Appointment\n"
    )
    result = _lint_imports(tree)
    assert result.returncode != 0
    assert "clinic is not allowed to import sessions" in result.stdout
    assert "clinic.messaging.outbox -> sessions.models" in result.stdout
