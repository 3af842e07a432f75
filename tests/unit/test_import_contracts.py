"""The import-linter contracts in pyproject.toml have teeth: each bad import below breaks `lint-imports`.

Each test copies operator/helm_e2e to a temporary directory, changes one thing in the copy and runs
`lint-imports` with the project's own pyproject.toml against the copy (never the working tree).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_copy(tmp_path: Path, *, edit: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Append each `edit` line to its file (created if new) in a copy of the package; run lint-imports."""
    src = tmp_path / "src"
    shutil.copytree(
        ROOT / "operator" / "helm_e2e", src / "helm_e2e", ignore=shutil.ignore_patterns("__pycache__")
    )
    for relative, line in edit.items():
        module = src / "helm_e2e" / relative
        module.write_text((module.read_text() if module.exists() else "") + f"\n{line}\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    env = os.environ | {"PYTHONPATH": str(src), "COLUMNS": "500"}  # the copy shadows the editable install
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(tmp_path / "pyproject.toml")],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_unchanged_package_keeps_every_contract(tmp_path: Path) -> None:
    result = lint_copy(tmp_path, edit={})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("edit", "violation"),
    [
        pytest.param(
            {"core/naming.py": "from .. import controller"},
            "helm_e2e.core is not allowed to import helm_e2e.controller",
            id="core-imports-the-controller",
        ),
        pytest.param(
            {"core/hooks.py": "from ..adapters import kube"},
            "helm_e2e.core is not allowed to import helm_e2e.adapters",
            id="a-new-core-module-imports-an-adapter",
        ),
        pytest.param(
            {"core/models.py": "import kubernetes"},
            "helm_e2e.core is not allowed to import kubernetes",
            id="core-imports-the-kubernetes-client",
        ),
        pytest.param(
            {"adapters/kube.py": "from .. import handlers"},
            "helm_e2e.adapters is not allowed to import helm_e2e.handlers",
            id="an-adapter-reaches-up-into-the-handlers",
        ),
        pytest.param(
            {"core/plan.py": "from ..config import Settings"},
            "helm_e2e.core is not allowed to import helm_e2e.config",
            id="core-reads-the-settings-instead-of-taking-arguments",
        ),
        pytest.param(
            {"workqueue.py": "import kopf"},
            "helm_e2e.workqueue is not allowed to import kopf",
            id="the-work-queue-imports-kopf",
        ),
        pytest.param(
            {"outbox.py": "from . import errors"},
            "helm_e2e.outbox",
            id="a-new-top-level-module-is-not-yet-placed-in-a-layer",
        ),
    ],
)
def test_lint_imports_fails_when_a_module_breaks_the_layers(
    tmp_path: Path, edit: dict[str, str], violation: str
) -> None:
    result = lint_copy(tmp_path, edit=edit)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
    assert violation in result.stdout, result.stdout
