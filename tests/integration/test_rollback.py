"""Rollback on failure with the real helm against the local apiserver (kwok runs the test pods)."""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import signal
import stat
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, TEST_HELM, Cluster, assert_stays, wait_until
from test_operator import get_run, runs, wait_run

TINY = ROOT / "tests" / "data" / "charts" / "tiny"
OTHER_MAJOR = (
    "helm" if TEST_HELM == "helm4" else "helm4"
)  # the helm (3 or 4) the test releases are not written by


@pytest.fixture(autouse=True)
def own_crds(cluster: Cluster) -> None:
    """This branch's CRDs right before each test: the shared cluster's CRDs are whoever applied last, and
    an older schema prunes spec.onFailure and status.rollback."""
    cluster.apply_crds()


@pytest.fixture
def opted_in(tmp_path: Path) -> str:
    """The tiny chart, annotated in Chart.yaml to roll back when its revision's run fails."""
    chart = tmp_path / "tiny-rollback"
    shutil.copytree(TINY, chart)
    with (chart / "Chart.yaml").open("a") as f:
        f.write("annotations:\n  helm-e2e.dev/on-failure: rollback\n")
    return str(chart)


def condition(run: dict[str, Any] | None, kind: str = "RolledBack") -> dict[str, Any] | None:
    conditions = (run or {}).get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == kind), None)


def wait_condition(
    cluster: Cluster, namespace: str, name: str, status: str, *, kind: str = "RolledBack", timeout: float = 90
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        found = condition(get_run(cluster, namespace, name), kind)
        return found if found and found["status"] == status else None

    return wait_until(probe, timeout=timeout, what=f"{kind}={status} on {name}")


def history(cluster: Cluster, namespace: str, release: str) -> list[dict[str, Any]]:
    out = cluster.helm("history", release, "-n", namespace, "-o", "json").stdout
    return list(json.loads(out))


def test_pass_pass_fail_rolls_back_to_two_and_the_rollback_revision_passes(
    cluster: Cluster, namespace: str, start_operator: Any, opted_in: str
) -> None:
    start_operator()
    cluster.helm("install", "web", opted_in, "-n", namespace)
    assert wait_run(cluster, namespace, "web-1")["status"]["phase"] == "Succeeded"
    cluster.helm("upgrade", "web", opted_in, "-n", namespace, "--set", "message=two")
    assert wait_run(cluster, namespace, "web-2")["status"]["phase"] == "Succeeded"
    cluster.helm("upgrade", "web", opted_in, "-n", namespace, "--set", "test.exitCode=1")

    rolled = wait_condition(cluster, namespace, "web-3", "True")
    assert (rolled["reason"], rolled["message"]) == ("RolledBack", "rolled back to revision 2 (revision 4)")
    run3 = get_run(cluster, namespace, "web-3")
    assert run3 is not None
    assert run3["metadata"]["annotations"]["helm-e2e.dev/on-failure"] == "rollback"
    assert run3["status"]["phase"] == "Failed"
    if (
        "onFailure" in run3["spec"]
    ):  # absent only while another checkout's older CRD is applied (shared cluster)
        assert run3["spec"]["onFailure"] == "rollback"
        assert run3["status"]["rollback"] == {"target": 2, "attempts": 1, "revision": 4}
    assert [h["description"] for h in history(cluster, namespace, "web")][-1] == "Rollback to 2"
    config = cluster.get_json("configmap", "-n", namespace, "web-config")
    assert config["data"]["message"] == "two"  # revision 2's values, applied by helm itself

    run4 = wait_run(cluster, namespace, "web-4")
    assert (run4["spec"]["release"]["trigger"], run4["status"]["phase"]) == ("rollback", "Succeeded")
    assert ("Normal", "RolledBack") in [
        (e["type"], e["reason"])
        for e in cluster.get_json("events", "-n", namespace, "--field-selector", "involvedObject.name=web-3")[
            "items"
        ]
    ]
    assert len(history(cluster, namespace, "web")) == 4


def test_a_chart_without_the_opt_in_is_left_alone(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    start_operator()
    cluster.helm("install", "plain", str(TINY), "-n", namespace)
    wait_run(cluster, namespace, "plain-1")
    cluster.helm("upgrade", "plain", str(TINY), "-n", namespace, "--set", "test.exitCode=1")
    assert wait_run(cluster, namespace, "plain-2")["status"]["phase"] == "Failed"
    wait_condition(cluster, namespace, "plain-2", "False", kind="EmailSent")  # the run is done with
    run = get_run(cluster, namespace, "plain-2")
    assert run is not None
    assert run["metadata"]["annotations"]["helm-e2e.dev/on-failure"] == "none"
    assert condition(run) is None
    assert_stays(lambda: len(history(cluster, namespace, "plain")) == 2, seconds=3, what="no rollback")


def test_a_failing_first_revision_has_nothing_to_roll_back_to_and_says_so(
    cluster: Cluster, namespace: str, start_operator: Any, opted_in: str
) -> None:
    start_operator()
    cluster.helm("install", "first", opted_in, "-n", namespace, "--set", "test.exitCode=1")
    rolled = wait_condition(cluster, namespace, "first-1", "False")
    assert rolled["reason"] == "NoPassingRevision"
    assert rolled["message"] == "no revision before 1 passed its tests: not rolled back"
    wait_condition(cluster, namespace, "first-1", "False", kind="EmailSent")  # reported after the decision
    assert len(history(cluster, namespace, "first")) == 1


SUITE = """
apiVersion: helm-e2e.dev/v1alpha1
kind: E2ESuite
metadata: {name: after-rollback}
spec:
  triggers: [rollback]
  tests:
  - name: rollback-check
    metadata:
      annotations: {"sim.helm-e2e.dev/exit-code": "1", "sim.helm-e2e.dev/duration": "1s"}
    template:
      containers: [{name: t, image: busybox}]
"""


def test_a_failing_rollback_revision_does_not_roll_back_again(
    cluster: Cluster, namespace: str, start_operator: Any, opted_in: str
) -> None:
    start_operator()
    cluster.apply(SUITE, namespace)  # fails only the runs of rollback revisions
    cluster.helm("install", "loop", opted_in, "-n", namespace)
    wait_run(cluster, namespace, "loop-1")
    cluster.helm("upgrade", "loop", opted_in, "-n", namespace, "--set", "test.exitCode=1")
    wait_condition(cluster, namespace, "loop-2", "True")
    assert wait_run(cluster, namespace, "loop-3")["status"]["phase"] == "Failed"
    rolled = wait_condition(cluster, namespace, "loop-3", "False")
    assert rolled["reason"] == "RollbackRevision"
    assert_stays(
        lambda: (
            len(history(cluster, namespace, "loop")) == 3
            and runs(cluster, namespace) == ["loop-1", "loop-2", "loop-3"]
        ),
        seconds=4,
        what="no second rollback",
    )


def wrapper(cluster: Cluster, tmp_path: Path, *, helm_runs_first: bool) -> Path:
    """A helm whose first call hangs (after running the real helm, or before): the operator dies in it."""
    real = str(cluster.bin / "helm")
    state = tmp_path / "helm-state"
    state.mkdir()
    path = state / "helm"
    first = f'"{real}" "$@"\n  ' if helm_runs_first else ""
    path.write_text(
        "#!/bin/sh\n"
        f'n=$(cat "{state}/calls" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "{state}/calls"\n'
        'if [ "$n" = 1 ]; then\n'
        f'  {first}echo $$ > "{state}/hung.pid"\n'
        "  exec sleep 600\n"
        "fi\n"
        f'exec "{real}" "$@"\n'
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.mark.parametrize("helm_runs_first", [True, False], ids=["helm-had-run", "helm-had-not-run"])
def test_an_operator_killed_between_the_intent_and_helm_never_rolls_back_twice(
    cluster: Cluster,
    namespace: str,
    start_operator: Any,
    opted_in: str,
    tmp_path: Path,
    helm_runs_first: bool,
) -> None:
    helm = wrapper(cluster, tmp_path, helm_runs_first=helm_runs_first)
    state = helm.parent
    op = start_operator(helm_binary=str(helm))
    try:
        cluster.helm("install", "crash", opted_in, "-n", namespace)
        wait_run(cluster, namespace, "crash-1")
        cluster.helm("upgrade", "crash", opted_in, "-n", namespace, "--set", "test.exitCode=1")
        wait_until(lambda: (state / "hung.pid").exists(), timeout=90, what="the first helm call")
        rolling = condition(get_run(cluster, namespace, "crash-2"))
        assert rolling is not None
        assert (rolling["status"], rolling["reason"]) == ("Unknown", "RollingBack")
        op.kill()
    finally:
        pid = int((state / "hung.pid").read_text()) if (state / "hung.pid").exists() else 0
        if pid:
            os.kill(pid, signal.SIGKILL)  # the hung stand-in helm this test started, by its pid
    op.start()

    rolled = wait_condition(cluster, namespace, "crash-2", "True")
    assert rolled["reason"] == "RolledBack"
    calls = int((state / "calls").read_text())
    assert calls == (1 if helm_runs_first else 2)  # a trace is recognised; without one, one retry
    rollbacks = [
        h for h in history(cluster, namespace, "crash") if h["description"].startswith("Rollback to")
    ]
    assert [h["description"] for h in rollbacks] == ["Rollback to 1"]
    assert wait_run(cluster, namespace, "crash-3")["spec"]["release"]["trigger"] == "rollback"
    op.assert_alive()


def release_doc(cluster: Cluster, namespace: str, release: str, revision: int) -> dict[str, Any]:
    """The release JSON Helm stored for a revision (base64 twice, gzip when it starts with 1f 8b 08)."""
    secret = cluster.get_json("secret", "-n", namespace, f"sh.helm.release.v1.{release}.v{revision}")
    blob = base64.b64decode(base64.b64decode(secret["data"]["release"]))
    doc: dict[str, Any] = json.loads(gzip.decompress(blob) if blob[:3] == b"\x1f\x8b\x08" else blob)
    return doc


def test_the_other_helm_major_rolls_back_a_release_this_one_wrote_and_this_one_upgrades_it_after(
    cluster: Cluster, namespace: str, start_operator: Any, opted_in: str
) -> None:
    """Run in both passes (HELM_E2E_TEST_HELM unset / helm4): the operator's helm 4 rolls back a release
    helm 3 wrote, and its helm 3 one that Helm 4 wrote; the writer then upgrades the release again."""
    start_operator(helm_binary=str(cluster.bin / OTHER_MAJOR))
    cluster.helm("install", "x", opted_in, "-n", namespace)
    assert wait_run(cluster, namespace, "x-1")["status"]["phase"] == "Succeeded"
    cluster.helm("upgrade", "x", opted_in, "-n", namespace, "--set", "message=two")
    assert wait_run(cluster, namespace, "x-2")["status"]["phase"] == "Succeeded"
    cluster.helm("upgrade", "x", opted_in, "-n", namespace, "--set", "test.exitCode=1")

    rolled = wait_condition(cluster, namespace, "x-3", "True")
    assert rolled["message"] == "rolled back to revision 2 (revision 4)"
    assert cluster.get_json("configmap", "-n", namespace, "x-config")["data"]["message"] == "two"
    run4 = wait_run(cluster, namespace, "x-4")
    assert (run4["spec"]["release"]["trigger"], run4["status"]["phase"]) == ("rollback", "Succeeded")
    written = release_doc(cluster, namespace, "x", 4)
    assert written["info"]["description"] == "Rollback to 2"
    # Helm 4 records what it restored; a Helm 3 rollback drops Helm 4's fields (apply_method with them)
    assert written["info"].get("rollback_revision") == (2 if OTHER_MAJOR == "helm4" else None)
    assert written.get("apply_method") == ("csa" if OTHER_MAJOR == "helm4" else None)

    cluster.helm("upgrade", "x", opted_in, "-n", namespace, "--set", "message=five")
    assert wait_run(cluster, namespace, "x-5")["status"]["phase"] == "Succeeded"
    assert cluster.get_json("configmap", "-n", namespace, "x-config")["data"]["message"] == "five"
    assert [h["status"] for h in history(cluster, namespace, "x")][-2:] == ["superseded", "deployed"]
    # Helm 4 upgrades by the previous revision's apply_method ("auto"): after a Helm 3 rollback it is
    # absent, so a release Helm 4 installed server-side is upgraded client-side from then on
    assert release_doc(cluster, namespace, "x", 5).get("apply_method") == (
        "csa" if TEST_HELM == "helm4" else None
    )
