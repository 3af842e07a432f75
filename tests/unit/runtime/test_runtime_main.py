"""Starting the operator: a kopf identity that needs no passwd entry (images run as a bare uid, 65532),
and Settings built at start from the environment decide what kopf watches."""

from __future__ import annotations

import getpass
import os
import pwd
import socket
from typing import Any

import kopf
import pytest

from helm_e2e.clients import metrics
from helm_e2e.runtime import main as operator_main
from helm_e2e.runtime.main import operator_identity, run_operator
from helm_e2e.settings import Settings


@pytest.fixture
def no_passwd_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process runs as a uid the passwd database does not know, with no user variables set."""

    def no_entry(uid: int) -> pwd.struct_passwd:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    def no_user() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    monkeypatch.setattr(getpass, "getuser", no_user)
    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.usefixtures("no_passwd_entry")
def test_identity_names_the_pod_and_the_process_without_a_passwd_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "helm-e2e-7d9f5c-x2kqp")
    assert operator_identity() == f"helm-e2e@helm-e2e-7d9f5c-x2kqp/{os.getpid()}"


def test_two_pods_get_two_identities(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "pod-a")
    first = operator_identity()
    monkeypatch.setattr(socket, "gethostname", lambda: "pod-b")
    assert first != operator_identity()


@pytest.fixture
def kopf_run(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run the start-up path without a cluster: record what would reach kopf.run and the metrics server."""
    for name in list(os.environ):
        if name.upper().startswith("HELM_E2E_"):
            monkeypatch.delenv(name)
    seen: dict[str, Any] = {}

    def build_registry(settings: Settings) -> str:
        seen["settings"] = settings
        return "the-registry"

    monkeypatch.setattr(operator_main, "build_registry", build_registry)
    monkeypatch.setattr(operator_main, "configure_logging", lambda **kwargs: seen.update(logging=kwargs))
    monkeypatch.setattr(metrics, "serve", lambda port: seen.update(metrics_port=port))
    monkeypatch.setattr(kopf, "run", lambda **kwargs: seen.update(kopf=kwargs))
    return seen


@pytest.mark.usefixtures("no_passwd_entry")
def test_the_operator_watches_only_the_configured_namespaces(
    monkeypatch: pytest.MonkeyPatch, kopf_run: dict[str, Any]
) -> None:
    monkeypatch.setenv("HELM_E2E_WATCH_NAMESPACES", "shop, prod")
    monkeypatch.setenv("HELM_E2E_METRICS_PORT", "9191")
    monkeypatch.setenv("HELM_E2E_LOG_LEVEL", "DEBUG")
    monkeypatch.setattr(socket, "gethostname", lambda: "op-0")
    run_operator(liveness="http://0.0.0.0:8080/healthz")
    assert kopf_run["kopf"] == {
        "registry": "the-registry",
        "standalone": True,
        "clusterwide": False,
        "namespaces": ["shop", "prod"],
        "liveness_endpoint": "http://0.0.0.0:8080/healthz",
        "identity": f"helm-e2e@op-0/{os.getpid()}",
    }
    assert kopf_run["settings"].watch_namespaces == ["shop", "prod"]
    assert kopf_run["metrics_port"] == 9191
    assert kopf_run["logging"]["level"] == "DEBUG"


def test_without_namespaces_the_operator_watches_the_whole_cluster(kopf_run: dict[str, Any]) -> None:
    run_operator()
    assert kopf_run["kopf"]["clusterwide"] is True
    assert kopf_run["kopf"]["namespaces"] == []
    assert kopf_run["kopf"]["liveness_endpoint"] is None


def test_an_invalid_setting_stops_the_start_before_kopf_runs(
    monkeypatch: pytest.MonkeyPatch, kopf_run: dict[str, Any]
) -> None:
    monkeypatch.setenv("HELM_E2E_POD_TTL_SECONDS", "-1")
    with pytest.raises(ValueError, match="pod_ttl_seconds"):
        run_operator()
    assert "kopf" not in kopf_run


class RecordingElector:
    def __init__(self, seen: dict[str, Any], **kwargs: Any) -> None:
        self.seen = seen
        seen["elector"] = kwargs

    def hold(self) -> bool:
        self.seen["order"].append("hold")
        return bool(self.seen.get("wins", True))

    def release(self) -> None:
        self.seen["order"].append("release")


@pytest.fixture
def recorded_election(monkeypatch: pytest.MonkeyPatch, kopf_run: dict[str, Any]) -> dict[str, Any]:
    from helm_e2e.runtime import leader

    monkeypatch.setattr(operator_main, "load_api_client", lambda: "the-api-client")
    monkeypatch.setattr(leader, "build_elector", lambda **kwargs: RecordingElector(kopf_run, **kwargs))
    real_run = kopf.run
    kopf_run["order"] = []

    def run(**kwargs: Any) -> None:
        kopf_run["order"].append("kopf")
        real_run(**kwargs)

    monkeypatch.setattr(kopf, "run", run)
    return kopf_run


def test_with_leader_election_the_operator_holds_the_lease_before_kopf_starts_and_releases_it_after(
    monkeypatch: pytest.MonkeyPatch, recorded_election: dict[str, Any]
) -> None:
    monkeypatch.setenv("HELM_E2E_LEADER_ELECTION", "true")
    monkeypatch.setenv("HELM_E2E_LEADER_ELECTION_NAMESPACE", "ops")
    monkeypatch.setattr(socket, "gethostname", lambda: "op-1")
    run_operator()
    assert recorded_election["order"] == ["hold", "kopf", "release"]
    elector = recorded_election["elector"]
    assert elector["identity"] == recorded_election["kopf"]["identity"] == f"helm-e2e@op-1/{os.getpid()}"
    assert elector["api_client"] == "the-api-client"
    assert elector["settings"].leader_election_namespace == "ops"
    assert recorded_election["kopf"]["standalone"] is True  # kopf's peering stays off


def test_without_leader_election_kopf_starts_at_once(recorded_election: dict[str, Any]) -> None:
    run_operator()
    assert "elector" not in recorded_election
    assert recorded_election["order"] == ["kopf"]


def test_leader_election_without_a_lease_namespace_stops_the_start(
    monkeypatch: pytest.MonkeyPatch, recorded_election: dict[str, Any]
) -> None:
    monkeypatch.setenv("HELM_E2E_LEADER_ELECTION", "true")
    with pytest.raises(ValueError, match="leader_election_namespace"):
        run_operator()
    assert "elector" not in recorded_election


def test_an_election_that_ends_without_a_win_never_starts_kopf(
    monkeypatch: pytest.MonkeyPatch, recorded_election: dict[str, Any]
) -> None:
    monkeypatch.setenv("HELM_E2E_LEADER_ELECTION", "true")
    monkeypatch.setenv("HELM_E2E_LEADER_ELECTION_NAMESPACE", "ops")
    recorded_election["wins"] = False
    with pytest.raises(SystemExit) as exited:
        run_operator()
    assert exited.value.code == 1
    assert recorded_election["order"] == ["hold"]


class FakeShard:
    """Two rounds: kopf stops because the shard changed, then for another reason (SIGTERM)."""

    rounds = [["a1"], ["a1", "a2"]]

    def __init__(self, api: Any, selector: str) -> None:
        import threading

        self.selector, self.namespaces = selector, self.rounds.pop(0)
        self.changed = threading.Event()
        if self.rounds:
            self.changed.set()

    def start(self) -> FakeShard:
        return self

    def stop(self) -> None:
        pass


def test_a_namespace_selector_runs_kopf_on_the_matching_namespaces_again_when_they_change(
    monkeypatch: pytest.MonkeyPatch, kopf_run: dict[str, Any]
) -> None:
    runs: list[dict[str, Any]] = []
    monkeypatch.setenv("HELM_E2E_NAMESPACE_SELECTOR", "helm-e2e.dev/shard=a")
    monkeypatch.setattr(operator_main, "load_api_client", lambda: "the-api-client")
    monkeypatch.setattr(operator_main, "ShardWatch", FakeShard)
    monkeypatch.setattr(kopf, "run", lambda **kwargs: runs.append(kwargs))
    run_operator()
    assert [(r["namespaces"], r["clusterwide"]) for r in runs] == [(["a1"], False), (["a1", "a2"], False)]
    assert all("stop_flag" in r for r in runs)
    assert kopf_run["settings"].watch_namespaces == ["a1", "a2"]  # handlers see the exact list
