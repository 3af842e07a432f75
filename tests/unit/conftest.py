"""Shared fixtures: a three-test run of webhooks r12 in prod (`report_run`, support/runs.py: for the report
and JUnit tests); the fake Kubernetes port and clock (`kube`, `clock`); the e-mails a controller sent (`sent`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import runs
from fake_kube import Clock, FakeKube

from helm_e2e.core.model.run import Run
from helm_e2e.settings import Settings

MakeRun = Callable[..., Run]


@pytest.fixture(scope="session")
def report_run() -> MakeRun:
    """Session-scoped (a pure factory) so hypothesis tests may use it."""
    return runs.report_run


@pytest.fixture
def kube(clock: Clock) -> FakeKube:
    """The in-memory Kubernetes port (tests/unit/support/fake_kube.py), stamping what it creates by `clock`."""
    return FakeKube(clock)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The report e-mails the operator would have sent (SMTP replaced by a list)."""
    messages: list[Any] = []

    async def fake_send(message: Any, *, settings: Settings) -> None:
        messages.append(message)

    monkeypatch.setattr("helm_e2e.reconcile.deliver_mail.send_email", fake_send)
    return messages
