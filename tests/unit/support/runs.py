"""The one builder of E2ERuns for the unit tests: a Run (`make_run`) or the body the API returns (`run_body`).

By default a run of release web r2 in namespace shop (chart c 1, an upgrade), named web-2, whose tests are
chart test hooks with a 600 s timeout. Every part is a keyword override: `release={...}` for the ReleaseRef,
`namespace=` for the run and its release, any other keyword for the RunSpec (deadline_seconds, report,
attempt, request, on_failure, ...).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from helm_e2e.core.model.release import Trigger
from helm_e2e.core.model.run import ReleaseRef, ReportSpec, Run, RunSpec, TestSource
from helm_e2e.core.model.run_codec import build_run_body, status_body
from helm_e2e.core.model.run_status import (
    AttemptRecord,
    PytestSummary,
    RunPhase,
    RunStatus,
    Summary,
    TestPhase,
    TestResult,
)

RELEASE: dict[str, Any] = {
    "name": "web",
    "namespace": "shop",
    "revision": 2,
    "chart": "c",
    "chart_version": "1",
    "trigger": Trigger.UPGRADE,
}


def release_ref(**overrides: Any) -> ReleaseRef:
    return ReleaseRef(**{**RELEASE, **overrides})


def make_run(
    *tests: str | TestSource,
    release: dict[str, Any] | None = None,
    name: str = "",
    namespace: str = "",
    uid: str = "u",
    created_at: datetime | None = None,
    status: RunStatus | None = None,
    source: str = "hook",
    timeout: int = 600,
    retries: int | None = None,
    **spec: Any,
) -> Run:
    """A Run of these tests (names become TestSources with `source`, `timeout` and `retries`)."""
    ref = release_ref(**{**({"namespace": namespace} if namespace else {}), **(release or {})})
    sources = [
        t
        if isinstance(t, TestSource)
        else TestSource(name=t, source=source, timeout_seconds=timeout, retries=retries)
        for t in tests
    ]
    return Run(
        name=name or f"{ref.name}-{ref.revision}",
        namespace=namespace or ref.namespace,
        uid=uid,
        created_at=created_at,
        spec=RunSpec(release=ref, tests=sources, **spec),
        status=status or RunStatus(),
    )


def summarize(tests: list[TestResult], **extra: Any) -> Summary:
    """The summary of these results: passed and failed counted, the rest errored."""
    passed = sum(t.phase == TestPhase.SUCCEEDED for t in tests)
    failed = sum(t.phase == TestPhase.FAILED for t in tests)
    return Summary(
        total=len(tests), passed=passed, failed=failed, errored=len(tests) - passed - failed, **extra
    )


def finished_status(phase: RunPhase, *tests: TestResult, **fields: Any) -> RunStatus:
    """A status in `phase` with these results and their summary."""
    return RunStatus(phase=phase, tests=list(tests), summary=summarize(list(tests)), **fields)


def run_body(run: Run) -> dict[str, Any]:
    """The E2ERun as the API returns it: the body the operator creates, with the run's status."""
    body = build_run_body(run.spec, name=run.name, namespace=run.namespace)
    if run.created_at is not None:
        body["metadata"]["creationTimestamp"] = run.created_at.isoformat().replace("+00:00", "Z")
    body["status"] = status_body(run.status)
    return body


# the pure result tests' run: web r2 in namespace ns (chart web 1.0.0), tests of 60 s in a 600 s deadline
SHORT_TESTS: dict[str, Any] = {
    "namespace": "ns",
    "release": {"chart": "web", "chart_version": "1.0.0"},
    "uid": "u1",
    "timeout": 60,
    "deadline_seconds": 600,
}


REPORT_T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
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


REPORT_RELEASE: dict[str, Any] = {
    "name": "webhooks",
    "namespace": "prod",
    "revision": 12,
    "chart": "webhooks-chart",
    "chart_version": "3.1.0",
    "app_version": "2.4.0",
    "image_tag": "2.4.1",
    "trigger": Trigger.UPGRADE,
    "deployed_at": REPORT_T0,
}


def report_tests(api_phase: TestPhase, log: str) -> list[TestResult]:
    """The report run's three results: a passed hook, `api` in `api_phase` with this log, a flaky `load`."""
    return [
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


def report_run(
    phase: RunPhase = RunPhase.FAILED,
    *,
    log: str = FAILING_LOG,
    to: list[str] | None = None,
    only_on_failure: bool = False,
    failing: TestPhase = TestPhase.FAILED,
) -> Run:
    """webhooks r12 in prod, three tests; `api` fails (or errors) when the run is Failed (or Error).
    The report and JUnit tests' run (the `report_run` fixture)."""
    api_phase = failing if phase in (RunPhase.FAILED, RunPhase.ERROR) else TestPhase.SUCCEEDED
    tests = report_tests(api_phase, log)
    status = RunStatus(
        phase=phase,
        started_at=REPORT_T0,
        completed_at=REPORT_T0 + timedelta(seconds=42),
        tests=tests,
        summary=summarize(tests, flaky=1),
        message={
            RunPhase.SUPERSEDED: "revision 13 was deployed before this run finished",
            RunPhase.CANCELLED: "the release was uninstalled",
        }.get(phase, ""),
    )
    return make_run(
        TestSource(name="webhooks-test-connection", source="hook", timeout_seconds=60),
        TestSource(name="api", source="suite/webhooks-e2e", timeout_seconds=300),
        TestSource(name="load", source="suite/webhooks-e2e", timeout_seconds=300, retries=1),
        release=REPORT_RELEASE,
        uid="0b5e-uid",
        status=status,
        report=ReportSpec(to=to or [], only_on_failure=only_on_failure),
    )


def web_r3_body(
    phase: RunPhase, *tests: TestResult, name: str = "web-3", namespace: str = "shop"
) -> dict[str, Any]:
    """An E2ERun of web r3 (image tag 2.0.1) as the API returns it, with these results (the CLI's tests)."""
    run = make_run(
        *(t.name for t in tests),
        release={"revision": 3, "chart": "web-chart", "chart_version": "1.2.3", "image_tag": "2.0.1"},
        name=name,
        namespace=namespace,
        source="suite/web-e2e",
        timeout=300,
        status=finished_status(phase, *tests),
    )
    return run_body(run)
