"""core/model/names.py is the one home of every shared name: the CRDs, the chart and the code agree with it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml
from repo_paths import ROOT

from helm_e2e.core.model import names

PACKAGE = ROOT / "operator" / "helm_e2e"


@pytest.mark.parametrize(
    ("path", "kind", "plural"),
    [
        ("crds/e2eruns.helm-e2e.dev.yaml", names.RUN_KIND, names.RUNS),
        ("crds/e2esuites.helm-e2e.dev.yaml", names.SUITE_KIND, names.SUITES),
    ],
)
def test_the_crds_use_the_group_version_kinds_and_plurals_of_names(path: str, kind: str, plural: str) -> None:
    crd = yaml.safe_load((ROOT / path).read_text())
    assert crd["metadata"]["name"] == f"{plural}.{names.GROUP}"
    assert crd["spec"]["group"] == names.GROUP
    assert (crd["spec"]["names"]["kind"], crd["spec"]["names"]["plural"]) == (kind, plural)
    assert [v["name"] for v in crd["spec"]["versions"]] == [names.VERSION]


def test_the_charts_rbac_names_the_api_group_of_names() -> None:
    rules = (ROOT / "charts/helm-e2e/templates/_helpers.tpl").read_text()
    groups = set(re.findall(r"apiGroups: \[([^\]]*)\]", rules))
    assert names.GROUP in groups
    assert not {g for g in groups if "e2e" in g} - {names.GROUP}


def _string_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_no_module_spells_the_api_group_or_our_labels_itself() -> None:
    """Every label, annotation and the API group come from core/model/names.py, never a literal elsewhere."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "names.py":
            continue
        for text in _string_literals(path):
            if names.GROUP in text or names.MANAGED_BY_LABEL in text:
                offenders.append(f"{path.relative_to(ROOT)}: {text!r}")
    assert offenders == []
