"""The fixture chart corpus with the real `helm` CLI (v3; Helm 4 with HELM_E2E_TEST_HELM=helm4) and no
cluster: every chart lints and renders, and every document Helm renders passes our bounded hook-manifest
parser (no aliases, JSON-shaped)."""

from __future__ import annotations

import re
import subprocess

import pytest
from harness import BIN, ROOT, TEST_HELM

from helm_e2e.core.plan.hook_yaml import parse_hook_manifest

CHARTS = sorted(p.name for p in (ROOT / "tests" / "data" / "charts").glob("hooks-*"))
VALUES = {
    "hooks-bats": ["test.exitCode=1"],
    "hooks-job": ["test.exitCode=1"],
    "hooks-parent": ["child.test.exitCode=1"],
}


def helm(*args: str) -> str:
    """The cached helm under test (TEST_HELM: helm 3 or helm4); missing is a failure, never a skip."""
    assert (BIN / TEST_HELM).exists(), f"no {TEST_HELM} at {BIN} (make binaries)"
    proc = subprocess.run(
        [str(BIN / TEST_HELM), *args], capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc.stdout


def test_the_corpus_has_every_shape_the_issue_names() -> None:
    assert len(CHARTS) == 7, CHARTS


@pytest.mark.parametrize("chart", CHARTS)
def test_each_corpus_chart_lints_and_its_test_hooks_parse(chart: str) -> None:
    path = str(ROOT / "tests" / "data" / "charts" / chart)
    helm("lint", "--strict", path)
    sets = [a for v in VALUES.get(chart, []) for a in ("--set", v)]
    rendered = helm("template", "rel", path, "-n", "compat", *sets)
    docs = [d for d in re.split(r"^---\s*$", rendered, flags=re.M) if d.strip()]
    hooks = [parse_hook_manifest(d) for d in docs]
    test_hooks = [h for h in hooks if "test" in h["metadata"].get("annotations", {}).get("helm.sh/hook", "")]
    assert test_hooks, "every corpus chart has test hooks"
    assert all("rel" in h["metadata"]["name"] for h in test_hooks)  # names come from the release
