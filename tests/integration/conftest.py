"""Fixtures for tests against the real local cluster. A cluster that cannot start fails the tests."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import Cluster, start_cluster


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
