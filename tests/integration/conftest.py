"""Fixtures for tests against the real local cluster. A cluster that cannot start fails the tests."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import Cluster, MailSink, OperatorProcess, S3Server, s3_gateway, smtp_server, start_cluster


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    try:
        return start_cluster()
    except RuntimeError as e:  # never skip: a missing cluster is a failure
        pytest.fail(str(e), pytrace=False)


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, removed afterwards (helm releases in it are uninstalled with it)."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{slug}-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    """Log files served by kwok must outlive the test's pods; tmp_path does."""
    return tmp_path


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> Cluster:
    cluster.apply_crds()
    return cluster


@pytest.fixture
def start_operator(crds: Cluster, namespace: str, tmp_path: Path) -> Iterator[Callable[..., OperatorProcess]]:
    """Start the operator for this test's namespace with extra HELM_E2E_* settings; stopped afterwards."""
    started: list[OperatorProcess] = []

    def start(**env: str) -> OperatorProcess:
        op = OperatorProcess(crds, namespace, tmp_path, {f"HELM_E2E_{k.upper()}": v for k, v in env.items()})
        started.append(op.start())
        return op

    yield start
    for op in started:
        op.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3-compatible server (versitygw over a tmp directory) with one bucket, for the whole session.
    A server that cannot be built or started fails the tests that use it (never a skip)."""
    with s3_gateway(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture
def sink(unused_tcp_port: int) -> Iterator[tuple[MailSink, int]]:
    """A real SMTP server on a free port: (what it received, its port)."""
    with smtp_server(MailSink(), port=unused_tcp_port) as s:
        yield s, unused_tcp_port
