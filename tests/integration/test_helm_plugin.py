"""`helm e2e ...` against the local cluster: the plugin installed with the real `helm plugin install`
(private HELM_PLUGINS / HELM_DATA_HOME) gives the same answers and exit codes as `helm-e2e` itself.

No operator runs here: the E2ERuns are written with kubectl (object, then status through the status
subresource), exactly as the operator would leave them. The releases are real (`helm install` of the tiny
chart without tests, so no operator anywhere plans a run for them).
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import BIN, KUBECONFIG, ROOT, Cluster

TINY = str(ROOT / "tests" / "data" / "charts" / "tiny")
PLUGIN = ROOT / "plugin" / "helm-e2e"
VENV = ROOT / ".venv"
CRDS = ("e2eruns.helm-e2e.dev", "e2esuites.helm-e2e.dev")


@pytest.fixture(scope="module")
def kube() -> Cluster:
    """The running local cluster (make integration starts it); an unreachable one fails, never skips."""
    cluster = Cluster(kubeconfig=KUBECONFIG, bin=BIN)
    ready = cluster.kubectl("get", "--raw", "/readyz", check=False)
    if ready.returncode != 0:
        pytest.fail(f"the local cluster is not reachable (make cluster-up):\n{ready.stderr}", pytrace=False)
    missing = [crd for crd in CRDS if cluster.kubectl("get", "crd", crd, check=False).returncode != 0]
    if missing:  # apply only when absent: never replace CRDs another checkout installed
        cluster.kubectl("apply", "-f", str(ROOT / "crds"))
    for crd in CRDS:
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
    return cluster


@pytest.fixture
def ns(kube: Cluster) -> Iterator[str]:
    name = f"integ-helm-plugin-{secrets.token_hex(3)}"
    kube.kubectl("create", "namespace", name)
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def plugin_env(kube: Cluster, tmp_path: Path) -> dict[str, str]:
    """helm's environment with the plugin installed into private plugin/data/config/cache homes."""
    env = {
        **kube.env,
        "PATH": f"{VENV / 'bin'}:{kube.bin}:/usr/bin:/bin",  # helm-e2e from the project's venv
        "HELM_PLUGINS": str(tmp_path / "plugins"),
        "HELM_DATA_HOME": str(tmp_path / "data"),
        "HELM_CONFIG_HOME": str(tmp_path / "config"),
        "HELM_CACHE_HOME": str(tmp_path / "cache"),
    }
    env.pop("HELM_E2E_VENV", None)
    installed = run([str(kube.bin / "helm"), "plugin", "install", str(PLUGIN)], env)
    assert installed.returncode == 0, installed.stderr
    return env


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def helm_e2e(kube: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return run([str(VENV / "bin" / "helm-e2e"), *args], kube.env)


def record_run(kube: Cluster, ns: str, release: str, revision: int, phase: str) -> str:
    """An E2ERun of (release, revision) with one test, finished in `phase`, as the operator writes it."""
    name = f"{release}-{revision}"
    passed = phase == "Succeeded"
    run_object: dict[str, Any] = {
        "apiVersion": "helm-e2e.dev/v1alpha1",
        "kind": "E2ERun",
        "metadata": {"name": name, "namespace": ns, "labels": {"helm-e2e.dev/release": release}},
        "spec": {
            "release": {
                "name": release,
                "namespace": ns,
                "revision": revision,
                "chart": "tiny",
                "chartVersion": "0.1.0",
                "appVersion": "1.0.0",
                "imageTag": "1.0.0",
                "trigger": "install" if revision == 1 else "upgrade",
            },
            "tests": [{"name": "smoke", "source": "hook", "timeoutSeconds": 60}],
            "deadlineSeconds": 600,
        },
    }
    status = {
        "phase": phase,
        "startedAt": "2026-11-27T10:00:00Z",
        "completedAt": "2026-11-27T10:00:07Z",
        "summary": {"total": 1, "passed": int(passed), "failed": int(not passed), "errored": 0},
        "tests": [
            {
                "name": "smoke",
                "pod": f"{name}-smoke",
                "phase": phase,
                "exitCode": 0 if passed else 1,
                "reason": "Completed" if passed else "Error",
                "startedAt": "2026-11-27T10:00:01Z",
                "completedAt": "2026-11-27T10:00:06Z",
                "durationSeconds": 5.0,
                "logTail": "1 passed" if passed else "1 failed",
            }
        ],
    }
    kube.apply(json.dumps(run_object), namespace=ns)
    kube.kubectl(
        "patch",
        "e2erun",
        name,
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    assert kube.get_json("e2erun", name, "-n", ns)["status"]["phase"] == phase
    return name


def test_helm_e2e_plugin_installs_and_shows_the_cli_help(plugin_env: dict[str, str], kube: Cluster) -> None:
    helm = str(kube.bin / "helm")
    listed = run([helm, "plugin", "list"], plugin_env)
    assert "e2e" in listed.stdout.split()
    helped = run([helm, "e2e", "--help"], plugin_env)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: helm-e2e")
    for command in ("wait", "junit", "logs"):
        assert command in helped.stdout


@pytest.mark.parametrize(("phase", "code"), [("Succeeded", 0), ("Failed", 1)])
def test_helm_e2e_wait_exits_like_the_cli(
    plugin_env: dict[str, str], kube: Cluster, ns: str, phase: str, code: int
) -> None:
    kube.helm("install", "shop", TINY, "-n", ns, "--set", "test.enabled=false")
    kube.helm("upgrade", "shop", TINY, "-n", ns, "--set", "test.enabled=false")  # latest revision: 2
    record_run(kube, ns, "shop", 1, "Failed" if phase == "Succeeded" else "Succeeded")  # not the latest
    name = record_run(kube, ns, "shop", 2, phase)
    wait = ("wait", "shop", "--timeout", "20", "--interval", "0.5")

    cli = helm_e2e(kube, *wait, "-n", ns)
    plugin = run([str(kube.bin / "helm"), "e2e", *wait, "-n", ns], plugin_env)

    assert cli.returncode == code, cli.stderr
    assert plugin.returncode == code, plugin.stderr
    assert plugin.stdout == cli.stdout
    assert f"waiting for E2ERun {ns}/{name} (release shop revision 2)" in plugin.stdout
    assert f"{name}: {phase} — {int(phase == 'Succeeded')}/1 passed" in plugin.stdout


def test_helm_e2e_reads_runs_through_helms_namespace_context_and_a_venv(
    plugin_env: dict[str, str], kube: Cluster, ns: str
) -> None:
    kube.helm("install", "web", TINY, "-n", ns, "--set", "test.enabled=false")
    name = record_run(kube, ns, "web", 1, "Failed")
    helm = str(kube.bin / "helm")
    context = kube.kubectl("config", "current-context").stdout.strip()

    junit = helm_e2e(kube, "junit", name, "-n", ns)
    via_context = run([helm, "--kube-context", context, "e2e", "junit", name, "-n", ns], plugin_env)
    assert (via_context.returncode, via_context.stdout) == (0, junit.stdout), via_context.stderr
    assert 'failures="1"' in via_context.stdout

    # the namespace from HELM_NAMESPACE (what `helm -n` sets), the CLI from HELM_E2E_VENV, not PATH
    venv_env = {
        **plugin_env,
        "PATH": f"{kube.bin}:/usr/bin:/bin",
        "HELM_NAMESPACE": ns,
        "HELM_E2E_VENV": str(VENV),
    }
    logs = run([helm, "e2e", "logs", name, "smoke"], venv_env)
    assert (logs.returncode, logs.stdout.strip()) == (0, "1 failed"), logs.stderr

    elsewhere = run([helm, "e2e", "logs", name, "-n", "default"], plugin_env)
    assert elsewhere.returncode == 2
    assert f"E2ERun default/{name} not found" in elsewhere.stderr
