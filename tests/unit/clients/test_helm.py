"""The helm subprocess adapter with stand-in helm scripts: argv, environment, errors, timeout, credentials."""

from __future__ import annotations

import gc
import json
import stat
from pathlib import Path

import pytest

from helm_e2e.clients.helm import Helm, build_incluster_kubeconfig


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "helm"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


async def test_helm_rollback_runs_with_the_release_revision_and_no_wait(tmp_path: Path) -> None:
    out = tmp_path / "argv"
    helm = Helm(binary=script(tmp_path, f'echo "$@" > {out}; env > {tmp_path}/env'), timeout_seconds=10)
    result = await helm.rollback(release="web", namespace="shop", revision=2)
    assert result.ok
    assert out.read_text().split() == ["rollback", "--namespace", "shop", "--wait=false", "--", "web", "2"]
    env = dict(line.split("=", 1) for line in (tmp_path / "env").read_text().splitlines() if "=" in line)
    assert env["HELM_CACHE_HOME"].startswith(env["HELM_CONFIG_HOME"].rpartition("/")[0])
    assert not [k for k in env if k.startswith("HELM_E2E_")]


async def test_a_failing_helm_leaves_only_its_first_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELM_E2E_SMTP_PASSWORD", "hunter2")
    body = (
        'echo "Error: cannot patch \\"web\\" with kind Deployment" >&2; echo "password: hunter2" >&2; exit 1'
    )
    result = await Helm(binary=script(tmp_path, body), timeout_seconds=10).rollback(
        release="web", namespace="shop", revision=2
    )
    assert not result.ok
    assert result.error == 'Error: cannot patch "web" with kind Deployment'


async def test_a_helm_that_hangs_is_killed_at_the_timeout(tmp_path: Path) -> None:
    result = await Helm(binary=script(tmp_path, "exec sleep 30"), timeout_seconds=0.3).rollback(
        release="web", namespace="shop", revision=2
    )
    assert not result.ok
    assert "did not finish within 0.3s" in result.error


async def test_a_missing_helm_binary_is_a_failed_rollback(tmp_path: Path) -> None:
    result = await Helm(binary=str(tmp_path / "nope"), timeout_seconds=1).rollback(
        release="web", namespace="shop", revision=2
    )
    assert not result.ok
    assert "helm could not be started" in result.error


async def test_in_a_pod_helm_gets_a_private_kubeconfig_that_refers_to_the_token_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = tmp_path / "sa"
    account.mkdir()
    (account / "token").write_text("secret-token")
    (account / "ca.crt").write_text("ca")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    body = f'cat "$KUBECONFIG" > {tmp_path}/kubeconfig; stat -c %a "$KUBECONFIG" > {tmp_path}/mode'
    helm = Helm(binary=script(tmp_path, body), timeout_seconds=10, account=account)
    assert (await helm.rollback(release="web", namespace="shop", revision=2)).ok
    config = json.loads((tmp_path / "kubeconfig").read_text())
    assert config == build_incluster_kubeconfig(host="10.0.0.1", port="443", account=account)
    assert config["users"][0]["user"] == {"tokenFile": str(account / "token")}
    assert "secret-token" not in (tmp_path / "kubeconfig").read_text()
    assert (tmp_path / "mode").read_text().strip() == "600"


def test_an_ipv6_apiserver_address_is_bracketed() -> None:
    config = build_incluster_kubeconfig(host="fd00::1", port="443")
    assert config["clusters"][0]["cluster"]["server"] == "https://[fd00::1]:443"  # type: ignore[index]


async def test_the_private_home_is_removed_on_close_and_when_the_client_is_collected(tmp_path: Path) -> None:
    """Each client made a helm home under /tmp that nothing removed: hundreds piled up on a dev machine."""
    homes = tmp_path / "homes"
    body = f'echo "$HELM_CONFIG_HOME" >> {homes}'
    closed, dropped = (Helm(binary=script(tmp_path, body), timeout_seconds=10) for _ in range(2))
    for helm in (closed, dropped):
        assert (await helm.rollback(release="web", namespace="shop", revision=2)).ok
    first, second = (Path(line).parent for line in homes.read_text().splitlines())
    assert first != second
    assert first.is_dir()
    closed.close()
    closed.close()  # twice is harmless
    assert not first.exists()
    assert second.is_dir()
    del dropped, helm  # the loop variable holds the last one too
    gc.collect()
    assert not second.exists()
