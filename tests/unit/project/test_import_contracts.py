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
from repo_paths import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_copy(tmp_path: Path, *, edit: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Append each `edit` line to its file (created if new) in a copy of the package; run lint-imports."""
    src = tmp_path / "src"
    shutil.copytree(
        ROOT / "operator" / "helm_e2e", src / "helm_e2e", ignore=shutil.ignore_patterns("__pycache__")
    )
    for relative, line in edit.items():
        module = src / "helm_e2e" / relative
        module.parent.mkdir(parents=True, exist_ok=True)
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
            {"core/model/dns_names.py": "from helm_e2e.reconcile import controller"},
            "helm_e2e.core is not allowed to import helm_e2e.reconcile",
            id="core-imports-the-controller",
        ),
        pytest.param(
            {"core/plan/chart_hooks.py": "from helm_e2e.clients import kube"},
            "helm_e2e.core is not allowed to import helm_e2e.clients",
            id="a-core-module-imports-a-client",
        ),
        pytest.param(
            {"core/model/run.py": "import kubernetes"},
            "helm_e2e.core is not allowed to import kubernetes",
            id="core-imports-the-kubernetes-client",
        ),
        pytest.param(
            {"clients/kube.py": "from helm_e2e.runtime import kopf_wiring"},
            "helm_e2e.clients is not allowed to import helm_e2e.runtime",
            id="a-client-reaches-up-into-the-kopf-wiring",
        ),
        pytest.param(
            {"core/plan/build.py": "from helm_e2e.settings import Settings"},
            "helm_e2e.core is not allowed to import helm_e2e.settings",
            id="core-reads-the-settings-instead-of-taking-arguments",
        ),
        pytest.param(
            {"reconcile/workqueue.py": "import kopf"},
            "helm_e2e.reconcile is not allowed to import kopf",
            id="the-shell-imports-kopf",
        ),
        pytest.param(
            {"outbox.py": "from helm_e2e import errors"},
            "helm_e2e.outbox",
            id="a-new-top-level-module-is-not-yet-placed-in-a-layer",
        ),
        pytest.param(
            {"core/model/names.py": "from helm_e2e.core.plan import build"},
            "helm_e2e.core.model is not allowed to import helm_e2e.core.plan",
            id="the-core-vocabulary-reaches-up-into-planning",
        ),
        pytest.param(
            {"core/results/pod_result.py": "from helm_e2e.core.outcomes import report"},
            "helm_e2e.core.results is not allowed to import helm_e2e.core.outcomes",
            id="results-reach-up-into-the-report",
        ),
        pytest.param(
            {"core/sources/flux.py": "from helm_e2e.core.artifacts import rules"},
            "helm_e2e.core.sources is not allowed to import helm_e2e.core.artifacts",
            id="two-independent-core-concerns-import-each-other",
        ),
        pytest.param(
            {"core/newconcern/__init__.py": "from helm_e2e.core.model import names"},
            "helm_e2e.core.newconcern",
            id="a-new-core-package-is-not-yet-placed-in-a-layer",
        ),
        pytest.param(
            {"reconcile/executor.py": "from helm_e2e.reconcile import controller"},
            "helm_e2e.reconcile.executor is not allowed to import helm_e2e.reconcile.controller",
            id="the-executor-imports-the-controller",
        ),
        pytest.param(
            {"reconcile/write_status.py": "from helm_e2e.reconcile import executor"},
            "helm_e2e.reconcile.write_status is not allowed to import helm_e2e.reconcile.executor",
            id="the-status-writer-imports-the-executor",
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
