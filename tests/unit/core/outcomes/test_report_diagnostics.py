"""The report's diagnostics section (templates/_diagnostics.*): per failed test, its containers' states,
its pod's Events and whose log the tail is; escaped in HTML, bounded by what the status holds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import (
    ContainerDiagnosis,
    Diagnostics,
    PodEventRecord,
    RunPhase,
    TestPhase,
)
from helm_e2e.core.outcomes.report import render_report

MakeRun = Callable[..., Run]  # the report_run fixture (conftest.py)
HOSTILE = '<script>alert(1)</script></pre><img src=x onerror="steal()">'


def with_diagnostics(run: Run, *, message: str = "token audience mismatch") -> Run:
    api = next(t for t in run.status.tests if t.name == "api")
    api.log_container = "jwt-setup"
    api.log_tail = "jwt-setup: cannot read key /keys/jwk.json\n"
    api.diagnostics = Diagnostics(
        containers=[
            ContainerDiagnosis(
                name="jwt-setup", init=True, state="terminated", reason="Error", exit_code=2, message=message
            ),
            ContainerDiagnosis(name="pytest", state="waiting", reason="PodInitializing", restart_count=0),
        ],
        events=[
            PodEventRecord(
                type="Warning",
                reason="BackOff",
                message="Back-off restarting failed container",
                count=4,
                last_seen=datetime(2026, 11, 25, 10, 0, 41, tzinfo=UTC),
            )
        ],
    )
    return run


def test_a_failed_tests_containers_events_and_log_container_are_in_both_parts(report_run: MakeRun) -> None:
    report = render_report(
        with_diagnostics(report_run(RunPhase.FAILED, failing=TestPhase.FAILED)), cluster=""
    )
    for part in (report.text, report.html):
        assert "api: containers and Events" in part
        assert "jwt-setup" in part
        assert "(init)" in part
        assert "(exit 2)" in part
        assert "PodInitializing" in part
        assert "Back-off restarting failed container" in part
        assert "(x4)" in part
        assert "10:00:41" in part
        assert "(an init container)" in part
    assert "  terminated jwt-setup (init) - Error (exit 2)" in report.text
    assert "The log below is container jwt-setup's (an init container)." in report.text
    assert report.text.index("containers and Events") < report.text.index("api: last log lines")


def test_a_passing_run_shows_no_diagnostics_section(report_run: MakeRun) -> None:
    run = with_diagnostics(report_run(RunPhase.SUCCEEDED))
    report = render_report(run, cluster="")
    assert "containers and Events" not in report.text
    assert "containers and Events" not in report.html


def test_a_failed_test_without_events_says_so(report_run: MakeRun) -> None:
    run = with_diagnostics(report_run(RunPhase.FAILED, failing=TestPhase.FAILED))
    run.status.tests[1].diagnostics = Diagnostics(containers=[], events=[])
    report = render_report(run, cluster="")
    assert "(no Events recorded for the pod)" in report.text
    assert "(no Events recorded for the pod)" in report.html


def test_hostile_event_and_container_messages_are_escaped_in_html(report_run: MakeRun) -> None:
    run = with_diagnostics(report_run(RunPhase.FAILED, failing=TestPhase.FAILED), message=HOSTILE)
    run.status.tests[1].diagnostics.events[0].message = HOSTILE  # type: ignore[union-attr]
    report = render_report(run, cluster="")
    assert "<script" not in report.html
    assert "<img" not in report.html
    assert report.html.count("</pre>") == 1
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report.html
