"""A run's status is written from one place: reconcile/write_status.py (issue 26: it was written from four)."""

from __future__ import annotations

import ast

from repo_paths import ROOT

PACKAGE = ROOT / "operator" / "helm_e2e"
WRITER = PACKAGE / "reconcile" / "write_status.py"


def callers_of(method: str) -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == method
            ):
                found.add(str(path.relative_to(PACKAGE)))
    return found


def test_only_the_status_writer_patches_a_runs_status() -> None:
    # the clients define it (and the Kube facade forwards it); the shell calls it in one module only
    callers = {p for p in callers_of("patch_run_status") if not p.startswith("clients/")}
    assert callers == {str(WRITER.relative_to(PACKAGE))}
