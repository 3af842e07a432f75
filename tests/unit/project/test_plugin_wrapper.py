"""`helm e2e ...`: the Helm plugin installed with the real `helm plugin install`, calling a stand-in CLI.

No cluster: the stand-in `helm-e2e` records its arguments and kubeconfig and exits as told, so these tests
show what Helm and the wrapper hand to the CLI. tests/integration/test_helm_plugin.py runs the real CLI
against the cluster. A missing helm binary fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from repo_paths import ROOT

PLUGIN = ROOT / "plugin" / "helm-e2e"
BIN = Path.home() / ".cache" / "helm-e2e" / "bin" / "current"
STAND_IN = """#!/bin/sh
printf '%s\\n' "$@" > "$FAKE_OUT/argv"
printf '%s' "${KUBECONFIG:-}" > "$FAKE_OUT/kubeconfig-path"
[ -z "${KUBECONFIG:-}" ] || cat "$KUBECONFIG" > "$FAKE_OUT/kubeconfig"
exit "${FAKE_EXIT:-0}"
"""
KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [
        {"name": "c1", "cluster": {"server": "https://127.0.0.1:1"}},
        {"name": "c2", "cluster": {"server": "https://127.0.0.1:2"}},
    ],
    "users": [{"name": "u1", "user": {"token": "a"}}, {"name": "u2", "user": {"token": "b"}}],
    "contexts": [
        {"name": "one", "context": {"cluster": "c1", "user": "u1", "namespace": "ns-one"}},
        {"name": "two", "context": {"cluster": "c2", "user": "u2", "namespace": "ns-two"}},
    ],
    "current-context": "one",
}


def tool(name: str) -> str:
    found = shutil.which(name) or (str(BIN / name) if os.access(BIN / name, os.X_OK) else None)
    if found is None:
        pytest.fail(f"no {name} binary on PATH or in {BIN} (make binaries)", pytrace=False)
    return found


@dataclass
class Helm:
    env: dict[str, str]
    out: Path

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        for f in self.out.iterdir():
            f.unlink()
        return subprocess.run(
            [tool("helm"), *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def argv(self) -> list[str]:
        return (self.out / "argv").read_text().splitlines()


@pytest.fixture
def helm(tmp_path: Path) -> Helm:
    """helm with the plugin installed in a private HELM_PLUGINS, a stand-in helm-e2e and a kubeconfig."""
    fakebin, out = tmp_path / "bin", tmp_path / "out"
    fakebin.mkdir()
    out.mkdir()
    (fakebin / "helm-e2e").write_text(STAND_IN)
    (fakebin / "helm-e2e").chmod(0o755)
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(KUBECONFIG))
    env = {
        "PATH": f"{fakebin}:{Path(tool('kubectl')).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "HELM_PLUGINS": str(tmp_path / "plugins"),
        "HELM_DATA_HOME": str(tmp_path / "data"),
        "HELM_CONFIG_HOME": str(tmp_path / "config"),
        "HELM_CACHE_HOME": str(tmp_path / "cache"),
        "KUBECONFIG": str(tmp_path / "kubeconfig"),
        "TMPDIR": str(tmp_path),
        "FAKE_OUT": str(out),
    }
    h = Helm(env, out)
    installed = h("plugin", "install", str(PLUGIN))
    assert installed.returncode == 0, installed.stderr
    assert "Installed plugin: e2e" in installed.stdout
    return h


def test_plugin_version_is_the_package_version() -> None:
    meta = yaml.safe_load((PLUGIN / "plugin.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert (meta["name"], meta["version"]) == ("e2e", project["version"])


def test_helm_lists_the_installed_plugin(helm: Helm) -> None:
    listed = helm("plugin", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].split()[:2] == ["e2e", "0.1.0"]


def test_namespace_flag_reaches_the_cli_after_the_subcommand(helm: Helm) -> None:
    proc = helm("e2e", "wait", "shop", "-n", "shop-prod", "--timeout", "60")
    assert proc.returncode == 0, proc.stderr
    assert helm.argv() == ["wait", "--namespace", "shop-prod", "shop", "--timeout", "60"]


def test_without_a_namespace_flag_the_contexts_namespace_is_used(helm: Helm) -> None:
    assert helm("e2e", "junit", "shop-3").returncode == 0
    assert helm.argv() == ["junit", "--namespace", "ns-one", "shop-3"]


def test_any_subcommand_passes_through_with_the_namespace(helm: Helm) -> None:
    assert helm("e2e", "rerun", "shop", "--revision", "4", "--namespace=web").returncode == 0
    assert helm.argv() == ["rerun", "--namespace", "web", "shop", "--revision", "4"]


def test_a_namespace_helm_does_not_consume_is_not_given_twice(helm: Helm) -> None:
    assert helm("e2e", "logs", "shop-3", "-nweb").returncode == 0
    assert helm.argv() == ["logs", "shop-3", "-nweb"]


@pytest.mark.parametrize(("args", "argv"), [(["--help"], ["--help"]), (["run"], ["run"])])
def test_help_and_the_operator_get_no_namespace(helm: Helm, args: list[str], argv: list[str]) -> None:
    assert helm("e2e", *args, "-n", "shop").returncode == 0
    assert helm.argv() == argv


@pytest.mark.parametrize("code", [0, 1, 2])
def test_the_cli_exit_code_is_helms_exit_code(helm: Helm, code: int) -> None:
    proc = helm("e2e", "wait", "shop", FAKE_EXIT=str(code))
    assert proc.returncode == code


def test_kubeconfig_flag_reaches_the_cli(helm: Helm, tmp_path: Path) -> None:
    other = tmp_path / "other-kubeconfig"
    other.write_text(yaml.safe_dump({**KUBECONFIG, "current-context": "two"}))
    assert helm("e2e", "wait", "shop", "--kubeconfig", str(other)).returncode == 0
    assert (helm.out / "kubeconfig-path").read_text() == str(other)
    assert helm.argv() == ["wait", "--namespace", "ns-two", "shop"]


def test_kube_context_gives_the_cli_a_private_kubeconfig_of_that_context(helm: Helm, tmp_path: Path) -> None:
    proc = helm("e2e", "wait", "shop", "--kube-context", "two")
    assert proc.returncode == 0, proc.stderr
    used = yaml.safe_load((helm.out / "kubeconfig").read_text())
    assert used["current-context"] == "two"
    assert [c["name"] for c in used["contexts"]] == ["two"]
    assert used["users"] == [{"name": "u2", "user": {"token": "b"}}]
    assert helm.argv() == ["wait", "--namespace", "ns-two", "shop"]
    private = Path((helm.out / "kubeconfig-path").read_text())
    assert private.parent.parent == tmp_path  # under TMPDIR, and removed afterwards
    assert not private.exists()


def test_an_unknown_kube_context_is_an_error_before_the_cli_runs(helm: Helm) -> None:
    proc = helm("e2e", "wait", "shop", "--kube-context", "nope")
    assert proc.returncode == 2
    assert "cannot read kube context nope" in proc.stderr
    assert not (helm.out / "argv").exists()


@pytest.mark.parametrize(
    "flag", [["--kube-token", "t"], ["--kube-as-user", "admin"], ["--kube-insecure-skip-tls-verify"]]
)
def test_kube_flags_the_cli_cannot_honour_are_refused(helm: Helm, flag: list[str]) -> None:
    proc = helm("e2e", "wait", "shop", *flag)
    assert proc.returncode == 2
    assert "helm e2e: error:" in proc.stderr
    assert not (helm.out / "argv").exists()


def test_the_cli_can_come_from_a_virtualenv(helm: Helm) -> None:
    env_path = f"/usr/bin:/bin:{Path(tool('kubectl')).parent}"  # no stand-in on PATH
    proc = helm("e2e", "--help", PATH=env_path, HELM_E2E_VENV=str(ROOT / ".venv"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: helm-e2e")
    assert "wait" in proc.stdout


def test_without_a_cli_the_plugin_says_what_to_install(helm: Helm) -> None:
    proc = helm("e2e", "wait", "shop", PATH="/usr/bin:/bin")
    assert proc.returncode == 2
    assert "no helm-e2e on PATH" in proc.stderr
    bad = helm("e2e", "wait", "shop", HELM_E2E_VENV="/nonexistent")
    assert bad.returncode == 2
    assert "HELM_E2E_VENV=/nonexistent has no bin/python" in bad.stderr


def test_debug_shows_the_command_line(helm: Helm) -> None:
    proc = helm("e2e", "wait", "shop", "-n", "web", "--debug")
    assert proc.returncode == 0
    assert "helm e2e: running: helm-e2e wait --namespace web shop" in proc.stderr
