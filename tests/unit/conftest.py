"""Shared fixtures: a three-test run of webhooks r12 in prod (`report_run`, for the report and JUnit tests);
the fake Kubernetes port and clock (`kube`, `clock`); the e-mails a controller sent (`sent`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fake_kube import Clock, FakeKube

from helm_e2e.core.model.schema import (
    AttemptRecord,
    PytestSummary,
    ReleaseRef,
    ReportSpec,
    Run,
    RunPhase,
    RunSpec,
    RunStatus,
    Summary,
    TestPhase,
    TestResult,
    TestSource,
    Trigger,
)
from helm_e2e.settings import Settings

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
FAILING_LOG = """\
============================= test session starts ==============================
collected 5 items

tests/test_api.py ...F.                                                   [100%]

=================================== FAILURES ===================================
________________________________ test_checkout _________________________________

    def test_checkout(client):
        r = client.post("/checkout", json={"cart": "c-1"})
>       assert r.status_code == 200
E       assert 503 == 200
E        +  where 503 = <Response [503]>.status_code

tests/test_api.py:42: AssertionError
=========================== short test summary info ============================
FAILED tests/test_api.py::test_checkout - assert 503 == 200
========================= 1 failed, 4 passed in 8.71s ==========================
"""


def build_run(
    phase: RunPhase = RunPhase.FAILED,
    *,
    log: str = FAILING_LOG,
    to: list[str] | None = None,
    only_on_failure: bool = False,
    failing: TestPhase = TestPhase.FAILED,
) -> Run:
    """webhooks r12 in prod, three tests; `api` fails (or errors) when the run is Failed (or Error)."""
    ref = ReleaseRef(
        name="webhooks",
        namespace="prod",
        revision=12,
        chart="webhooks-chart",
        chart_version="3.1.0",
        app_version="2.4.0",
        image_tag="2.4.1",
        trigger=Trigger.UPGRADE,
        deployed_at=T0,
    )
    api_phase = failing if phase in (RunPhase.FAILED, RunPhase.ERROR) else TestPhase.SUCCEEDED
    tests = [
        TestResult(
            name="webhooks-test-connection",
            pod="webhooks-12-webhooks-test-connection",
            phase=TestPhase.SUCCEEDED,
            exit_code=0,
            reason="Completed",
            duration_seconds=1.5,
        ),
        TestResult(
            name="api",
            pod="webhooks-12-api",
            phase=api_phase,
            exit_code={TestPhase.FAILED: 1, TestPhase.ERROR: None}.get(api_phase, 0),
            reason={TestPhase.FAILED: "Error", TestPhase.ERROR: "DeadlineExceeded"}.get(
                api_phase, "Completed"
            ),
            duration_seconds=9.0,
            log_tail=log,
            pytest=PytestSummary(
                passed=4,
                failed=1,
                first_failures=["tests/test_api.py::test_checkout - assert 503 == 200"],
            )
            if api_phase == TestPhase.FAILED
            else PytestSummary(passed=5),
        ),
        TestResult(
            name="load",
            pod="webhooks-12-load-a2",
            phase=TestPhase.SUCCEEDED,
            exit_code=0,
            reason="Completed",
            duration_seconds=30,
            attempt=2,
            flaky=True,
            attempts=[
                AttemptRecord(attempt=1, phase=TestPhase.FAILED, exit_code=1, reason="Error"),
                AttemptRecord(attempt=2, phase=TestPhase.SUCCEEDED, exit_code=0, reason="Completed"),
            ],
        ),
    ]
    passed = sum(t.phase == TestPhase.SUCCEEDED for t in tests)
    failed = sum(t.phase == TestPhase.FAILED for t in tests)
    status = RunStatus(
        phase=phase,
        started_at=T0,
        completed_at=T0 + timedelta(seconds=42),
        tests=tests,
        summary=Summary(total=3, passed=passed, failed=failed, errored=3 - passed - failed, flaky=1),
        message={
            RunPhase.SUPERSEDED: "revision 13 was deployed before this run finished",
            RunPhase.CANCELLED: "the release was uninstalled",
        }.get(phase, ""),
    )
    spec = RunSpec(
        release=ref,
        tests=[
            TestSource(name="webhooks-test-connection", source="hook", timeout_seconds=60),
            TestSource(name="api", source="suite/webhooks-e2e", timeout_seconds=300),
            TestSource(name="load", source="suite/webhooks-e2e", timeout_seconds=300, retries=1),
        ],
        report=ReportSpec(to=to or [], only_on_failure=only_on_failure),
    )
    return Run(name="webhooks-12", namespace="prod", uid="0b5e-uid", spec=spec, status=status)


MakeRun = Callable[..., Run]


@pytest.fixture(scope="session")
def report_run() -> MakeRun:
    """Session-scoped (a pure factory) so hypothesis tests may use it."""
    return build_run


@pytest.fixture
def kube() -> FakeKube:
    """The in-memory Kubernetes port (tests/unit/fake_kube.py)."""
    return FakeKube()


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
