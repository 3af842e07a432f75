"""The deploy report: subjects per phase, both parts, escaping of hostile logs, recipients, JUnit."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helm_e2e.core.junit import build_junit_xml
from helm_e2e.core.models import (
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
from helm_e2e.core.report import build_email, build_subject, decide_mail, decide_recipients, render_report

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
HOSTILE = '<script>alert(1)</script></pre><img src=x onerror="steal()">'


def make_run(
    phase: RunPhase = RunPhase.FAILED,
    *,
    log: str = "AssertionError: 503",
    to: list[str] | None = None,
    only_on_failure: bool = False,
) -> Run:
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
    tests = [
        TestResult(name="smoke", phase=TestPhase.SUCCEEDED, exit_code=0, duration_seconds=1.5),
        TestResult(
            name="api",
            phase=TestPhase.FAILED if phase == RunPhase.FAILED else TestPhase.SUCCEEDED,
            exit_code=1,
            reason="Error",
            duration_seconds=9.0,
            log_tail=log,
            pytest=PytestSummary(passed=4, failed=1, skipped=0, errors=0),
        ),
        TestResult(name="load", phase=TestPhase.SUCCEEDED, exit_code=0, duration_seconds=30),
    ]
    passed = sum(t.phase == TestPhase.SUCCEEDED for t in tests)
    status = RunStatus(
        phase=phase,
        started_at=T0,
        completed_at=T0 + timedelta(seconds=42),
        tests=tests,
        summary=Summary(total=3, passed=passed, failed=3 - passed, errored=0),
    )
    spec = RunSpec(
        release=ref,
        tests=[TestSource(name=t.name, source="hook", timeout_seconds=60) for t in tests],
        report=ReportSpec(to=to or [], only_on_failure=only_on_failure),
    )
    return Run(name="webhooks-12", namespace="prod", uid="0b5e-uid", spec=spec, status=status)


@pytest.mark.parametrize(
    ("phase", "subject"),
    [
        (RunPhase.SUCCEEDED, "[helm-e2e] webhooks r12 in prod: PASSED 3/3"),
        (RunPhase.FAILED, "[helm-e2e] webhooks r12 in prod: FAILED 2/3"),
        (RunPhase.ERROR, "[helm-e2e] webhooks r12 in prod: ERROR 3/3"),
        (RunPhase.CANCELLED, "[helm-e2e] webhooks r12 in prod: CANCELLED"),
        (RunPhase.SUPERSEDED, "[helm-e2e] webhooks r12 in prod: SUPERSEDED"),
    ],
)
def test_subject_names_release_revision_cluster_and_result(phase: RunPhase, subject: str) -> None:
    assert build_subject(make_run(phase), cluster="") == subject
    report = render_report(make_run(phase), cluster="")
    assert report.subject == subject
    assert phase.value in report.text
    assert phase.value in report.html


def test_cluster_name_replaces_the_namespace_in_the_subject() -> None:
    assert build_subject(make_run(RunPhase.SUCCEEDED), cluster="eu-1").endswith("in eu-1: PASSED 3/3")


def test_report_shows_what_was_deployed_and_each_test() -> None:
    report = render_report(make_run(), cluster="prod")
    for part in (report.text, report.html):
        for expected in (
            "webhooks",
            "prod",
            "12",
            "webhooks-chart",
            "3.1.0",
            "2.4.1",
            "upgrade",
            "42s",
            "smoke",
            "api",
            "load",
            "AssertionError: 503",
        ):
            assert expected in part
    assert "<style" not in report.html
    assert "http" not in report.html.replace("http://", "")  # no external resources


def test_hostile_log_lines_are_escaped_in_html() -> None:
    report = render_report(make_run(log=HOSTILE), cluster="")
    assert "<script>" not in report.html
    assert "<img" not in report.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report.html
    assert HOSTILE in report.text  # plain text shows it verbatim


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_no_log_tail_can_inject_markup(log: str) -> None:
    html = render_report(make_run(log=log), cluster="").html
    assert "<script" not in html.lower().replace("&lt;script", "")


def test_email_is_multipart_alternative_with_a_deterministic_message_id() -> None:
    report = render_report(make_run(), cluster="")
    message = build_email(report, sender="e2e@x.io", recipients=["a@x.io", "b@x.io"], date=T0)
    assert message.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert message["Message-ID"] == "<e2erun.0b5e-uid@helm-e2e.dev>"
    assert render_report(make_run(), cluster="").message_id == message["Message-ID"]
    assert message["To"] == "a@x.io, b@x.io"


def test_recipients_merge_operator_default_and_suites_without_duplicates() -> None:
    run = make_run(to=["Team@x.io", "ops@x.io"])
    assert decide_recipients(run, mail_to=["team@x.io", "lead@x.io"]) == [
        "team@x.io",
        "lead@x.io",
        "ops@x.io",
    ]


@pytest.mark.parametrize(
    ("phase", "only_on_failure", "report_cancelled", "to", "send", "reason"),
    [
        (RunPhase.FAILED, False, True, ["a@x.io"], True, "Send"),
        (RunPhase.SUCCEEDED, True, True, ["a@x.io"], False, "OnlyOnFailure"),
        (RunPhase.FAILED, True, True, ["a@x.io"], True, "Send"),
        (RunPhase.SUPERSEDED, False, False, ["a@x.io"], False, "NotReported"),
        (RunPhase.CANCELLED, False, True, ["a@x.io"], True, "Send"),
        (RunPhase.SUCCEEDED, False, True, [], False, "NoRecipients"),
        (RunPhase.RUNNING, False, True, ["a@x.io"], False, "NotFinished"),
    ],
)
def test_mail_decision(
    phase: RunPhase, only_on_failure: bool, report_cancelled: bool, to: list[str], send: bool, reason: str
) -> None:
    decision = decide_mail(
        make_run(phase, only_on_failure=only_on_failure), mail_to=to, report_cancelled=report_cancelled
    )
    assert (decision.send, decision.reason) == (send, reason)


def test_junit_counts_failures_and_escapes_logs() -> None:
    xml = build_junit_xml(make_run(log=HOSTILE))
    suite = ET.fromstring(xml.split("?>", 1)[1])
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")
    failure = suite.find("testcase[@name='api']/failure")
    assert failure is not None
    assert failure.text == HOSTILE
    assert "<script>" not in xml
