"""`helm-e2e logs RUN TEST` prints a failed test's diagnostics before its log tail."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from runs import web_r3_body as run_body

from helm_e2e.cli import main
from helm_e2e.core.model.run_codec import run_from_body
from helm_e2e.core.model.run_status import (
    ContainerDiagnosis,
    Diagnostics,
    PodEventRecord,
    RunPhase,
    TestPhase,
    TestResult,
)

JWT_LOG = "jwt-setup: HELM_E2E_JWT_AUDIENCE is empty\n"


def jwt_failed(*, event_message: str = "Back-off restarting failed container") -> TestResult:
    return TestResult(
        name="api",
        phase=TestPhase.ERROR,
        exit_code=2,
        reason="InitContainerFailed",
        log_tail=JWT_LOG,
        log_container="jwt-setup",
        diagnostics=Diagnostics(
            containers=[
                ContainerDiagnosis(
                    name="jwt-setup",
                    init=True,
                    state="terminated",
                    reason="Error",
                    exit_code=2,
                    restart_count=0,
                ),
                ContainerDiagnosis(name="pytest", state="waiting", reason="PodInitializing", restart_count=0),
            ],
            events=[
                PodEventRecord(
                    type="Warning",
                    reason="BackOff",
                    message=event_message,
                    count=3,
                    last_seen=datetime(2026, 11, 25, 10, 0, 41, tzinfo=UTC),
                )
            ],
        ),
    )


def test_logs_print_the_containers_events_and_whose_log_before_the_tail(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = run_from_body(run_body(RunPhase.ERROR, jwt_failed()))
    assert main.print_logs(run, "api") == main.EXIT_OK
    assert capsys.readouterr().out == (
        "containers:\n"
        "  terminated jwt-setup (init) - Error (exit 2)\n"
        "  waiting    pytest - PodInitializing\n"
        "events (newest first):\n"
        "  2026-11-25 10:00:41 Warning BackOff (x3): Back-off restarting failed container\n"
        "log of container jwt-setup (init):\n"
        f"{JWT_LOG}\n"
    )


def test_logs_of_a_test_without_diagnostics_print_only_the_tail(capsys: pytest.CaptureFixture[str]) -> None:
    passing = TestResult(name="smoke", phase=TestPhase.SUCCEEDED, log_tail="ok\n", log_container="t")
    run = run_from_body(run_body(RunPhase.SUCCEEDED, passing))
    assert main.print_logs(run, "smoke") == main.EXIT_OK
    assert capsys.readouterr().out == "ok\n\n"


def test_terminal_escapes_from_the_cluster_never_reach_the_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = run_from_body(
        run_body(RunPhase.ERROR, jwt_failed(event_message="\x1b]0;owned\x07red\x1b[31m\nnext"))
    )
    main.print_logs(run, "api")
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "Warning BackOff (x3): red next\n" in out  # one line per Event, whatever its message holds
