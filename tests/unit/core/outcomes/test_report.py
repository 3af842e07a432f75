"""The deploy report: subjects per phase, both parts, escaping of hostile logs, recipients, the e-mail."""

from __future__ import annotations

import email
import email.policy
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from repo_paths import DOCS

from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import RollbackRecord, RunPhase, TestPhase
from helm_e2e.core.model.text import clean_log
from helm_e2e.core.outcomes import rollback as rollbacks
from helm_e2e.core.outcomes.outbox import OutboxPolicy, decide_mail
from helm_e2e.core.outcomes.report import (
    build_email,
    build_message_id,
    build_subject,
    decide_recipients,
    render_report,
)
from helm_e2e.errors import MailError

MakeRun = Callable[..., Run]  # the report_run fixture (conftest.py)
HOSTILE = '<script>alert(1)</script>\n</pre><img src=x onerror="steal()">'
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("phase", "failing", "subject"),
    [
        (RunPhase.SUCCEEDED, TestPhase.FAILED, "[helm-e2e] webhooks r12 in prod: PASSED 3/3"),
        (RunPhase.FAILED, TestPhase.FAILED, "[helm-e2e] webhooks r12 in prod: FAILED 2/3"),
        (RunPhase.ERROR, TestPhase.ERROR, "[helm-e2e] webhooks r12 in prod: ERROR 2/3"),
        (RunPhase.CANCELLED, TestPhase.FAILED, "[helm-e2e] webhooks r12 in prod: CANCELLED"),
        (RunPhase.SUPERSEDED, TestPhase.FAILED, "[helm-e2e] webhooks r12 in prod: SUPERSEDED"),
    ],
)
def test_every_final_phase_renders_with_a_subject_naming_release_revision_cluster_and_result(
    report_run: MakeRun, phase: RunPhase, failing: TestPhase, subject: str
) -> None:
    run = report_run(phase, failing=failing)
    report = render_report(run, cluster="")
    assert build_subject(run, cluster="") == subject
    assert report.subject == subject
    assert report.text.startswith(subject)
    assert f"<title>{subject}</title>" in report.html
    assert phase.value in report.text
    assert phase.value in report.html
    if run.status.message:
        assert run.status.message in report.text
        assert run.status.message in report.html


def test_cluster_name_replaces_the_namespace_in_the_subject(report_run: MakeRun) -> None:
    assert build_subject(report_run(RunPhase.SUCCEEDED), cluster="eu-1").endswith("in eu-1: PASSED 3/3")


def test_both_parts_show_what_was_deployed_each_test_and_its_result(report_run: MakeRun) -> None:
    report = render_report(report_run(), cluster="prod")
    for part in (report.text, report.html):
        for expected in (
            "webhooks",
            "prod",
            "revision 12",
            "webhooks-chart 3.1.0",
            "2.4.1",
            "upgrade",
            "2026-11-25 10:00:00 UTC",
            "took 42s",
            "webhooks-test-connection",
            "load",
            "30.0s",
            "4 passed, 1 failed, 0 skipped, 0 errors",
            "tests/test_api.py::test_checkout - assert 503 == 200",
            "E       assert 503 == 200",
        ):
            assert expected in part, (expected, part)
    assert re.search(r"Failed\s+api \(exit 1\) 9\.0s - Error", report.text)


def test_only_failed_and_errored_tests_show_their_log_tail(report_run: MakeRun) -> None:
    assert "assert 503 == 200" not in render_report(report_run(RunPhase.SUCCEEDED), cluster="").text
    errored = render_report(report_run(RunPhase.ERROR, failing=TestPhase.ERROR), cluster="")
    assert "api: last log lines" in errored.text
    assert "DeadlineExceeded" in errored.html
    assert errored.html.count("<pre") == 1


def test_a_passing_hook_whose_output_log_policy_says_hook_succeeded_shows_its_log(
    report_run: MakeRun,
) -> None:
    run = report_run(RunPhase.SUCCEEDED)
    tests = [t.model_copy(update={"log_on_success": t.name == "api"}) for t in run.spec.tests]
    logged = run.model_copy(update={"spec": run.spec.model_copy(update={"tests": tests})})
    report = render_report(logged, cluster="")
    assert "api: last log lines" in report.text
    assert "assert 503 == 200" in report.text  # its recorded log tail
    assert "webhooks-test-connection: last log lines" not in report.text
    assert report.html.count("<pre") == 1


def test_html_uses_inline_styles_only_and_loads_nothing_from_outside(report_run: MakeRun) -> None:
    html = render_report(report_run(), cluster="").html
    for forbidden in ("<style", "<link", "<img", "<script", " src=", "href=", "url(", "@import"):
        assert forbidden not in html.lower()
    assert "<table" in html


def test_hostile_log_lines_are_escaped_in_html_and_verbatim_in_text(report_run: MakeRun) -> None:
    report = render_report(report_run(log=HOSTILE), cluster="")
    assert "<script" not in report.html
    assert "<img" not in report.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report.html
    assert "&lt;/pre&gt;&lt;img src=x onerror=&#34;steal()&#34;&gt;" in report.html
    assert report.html.count("</pre>") == 1
    assert HOSTILE in report.text


def test_ansi_colours_and_control_characters_are_removed_from_logs(report_run: MakeRun) -> None:
    log = "\x1b[31mFAILED\x1b[0m test_x\r\nbell\x07 nul\x00 end"
    report = render_report(report_run(log=log), cluster="")
    assert "FAILED test_x\nbell\ufffd nul\ufffd end" in report.text
    assert "\x1b" not in report.html
    assert clean_log("progress 10%\rprogress 100%") == "progress 10%\nprogress 100%"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_no_log_tail_can_inject_markup(report_run: MakeRun, log: str) -> None:
    html = render_report(report_run(log=log), cluster="").html
    assert "<script" not in html.lower()
    assert html.count("<pre") == html.count("</pre>") == 1


@settings(max_examples=100, deadline=None)
@given(st.text(st.characters(codec=None, exclude_categories=()), max_size=200))
def test_any_log_tail_yields_a_message_that_serialises(report_run: MakeRun, log: str) -> None:
    report = render_report(report_run(log=log), cluster="")
    message = build_email(report, sender="e2e@x.io", recipients=["a@x.io"])
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"] == report.message_id


def test_email_is_multipart_alternative_text_then_html_with_the_deterministic_message_id(
    report_run: MakeRun,
) -> None:
    report = render_report(report_run(), cluster="")
    message = build_email(report, sender="e2e@x.io", recipients=["a@x.io", "b@x.io"])
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert parts[0].get_content() == report.text
    assert parts[1].get_content() == report.html
    assert parsed["Message-ID"] == build_message_id("0b5e-uid") == "<e2erun.0b5e-uid@helm-e2e.dev>"
    assert render_report(report_run(), cluster="").message_id == parsed["Message-ID"]
    assert (parsed["From"], parsed["To"], parsed["Subject"]) == ("e2e@x.io", "a@x.io, b@x.io", report.subject)
    assert parsed["Date"].datetime == datetime(
        2026, 11, 25, 10, 0, 42, tzinfo=UTC
    )  # when the run completed: resends are identical
    assert parsed["Auto-Submitted"] == "auto-generated"


@pytest.mark.parametrize(
    ("operator", "suites", "expected"),
    [
        ([], [], []),
        (["team@x.io"], [], ["team@x.io"]),
        ([], ["ops@x.io"], ["ops@x.io"]),
        (["team@x.io", "lead@x.io"], ["Team@X.io", "ops@x.io"], ["team@x.io", "lead@x.io", "ops@x.io"]),
        (["a@x.io", "A@x.io", " ", ""], ["a@X.IO"], ["a@x.io"]),
    ],
)
def test_recipients_are_the_operator_default_then_the_suites_without_duplicates(
    report_run: MakeRun, operator: list[str], suites: list[str], expected: list[str]
) -> None:
    assert decide_recipients(report_run(to=suites), mail_to=operator) == expected


@pytest.mark.parametrize(
    ("phase", "only_on_failure", "report_cancelled", "enabled", "to", "send", "reason"),
    [
        (RunPhase.FAILED, False, True, True, ["a@x.io"], True, "Send"),
        (RunPhase.SUCCEEDED, False, True, True, ["a@x.io"], True, "Send"),
        (RunPhase.SUCCEEDED, True, True, True, ["a@x.io"], False, "OnlyOnFailure"),
        (RunPhase.FAILED, True, True, True, ["a@x.io"], True, "Send"),
        (RunPhase.ERROR, True, True, True, ["a@x.io"], True, "Send"),
        (RunPhase.SUPERSEDED, False, False, True, ["a@x.io"], False, "NotReported"),
        (RunPhase.CANCELLED, False, False, True, ["a@x.io"], False, "NotReported"),
        (RunPhase.CANCELLED, False, True, True, ["a@x.io"], True, "Send"),
        (RunPhase.SUCCEEDED, False, True, True, [], False, "NoRecipients"),
        (RunPhase.FAILED, False, True, False, ["a@x.io"], False, "Disabled"),
        (RunPhase.RUNNING, False, True, True, ["a@x.io"], False, "NotFinished"),
        (RunPhase.PENDING, False, True, True, ["a@x.io"], False, "NotFinished"),
    ],
)
def test_mail_decision(
    report_run: MakeRun,
    phase: RunPhase,
    only_on_failure: bool,
    report_cancelled: bool,
    enabled: bool,
    to: list[str],
    send: bool,
    reason: str,
) -> None:
    policy = OutboxPolicy(mail_to=tuple(to), report_cancelled=report_cancelled, smtp_enabled=enabled)
    why, recipients = decide_mail(report_run(phase, only_on_failure=only_on_failure), policy)
    assert (not why, why or "Send", recipients) == (send, reason, to)


def test_docs_example_report_is_rendered_from_the_current_templates(report_run: MakeRun) -> None:
    """HELM_E2E_UPDATE_DOCS=1 pytest tests/unit/core/outcomes/test_report.py rewrites docs/example-report.{html,txt}."""
    report = render_report(rolled_back(report_run()), cluster="prod-eu-1")
    expected = {
        "example-report.html": report.html,
        "example-report.txt": f"Subject: {report.subject}\n\n{report.text}",
    }
    if os.environ.get("HELM_E2E_UPDATE_DOCS") == "1":
        for name, content in expected.items():
            (DOCS / name).write_text(content, encoding="utf-8")
    for name, content in expected.items():
        assert (DOCS / name).read_text(encoding="utf-8") == content, (
            f"{name} is stale: HELM_E2E_UPDATE_DOCS=1"
        )


def test_a_subject_with_line_breaks_becomes_one_header_line(report_run: MakeRun) -> None:
    report = render_report(report_run(), cluster="eu-1\r\nBcc: x@evil.test")
    message = build_email(report, sender="e2e@x.io", recipients=["a@x.io"])
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed["Bcc"] is None
    assert "\n" not in parsed["Subject"]
    assert "eu-1 Bcc: x@evil.test" in parsed["Subject"]


@pytest.mark.parametrize(
    ("sender", "recipients"),
    [("e2e@x.io", ["a@x.io\r\nBcc: hidden@evil.test"]), ("e2e@x.io\nX: y", ["a@x.io"])],
)
def test_a_header_that_cannot_be_built_is_a_permanent_mail_error_without_its_value(
    report_run: MakeRun, sender: str, recipients: list[str]
) -> None:
    with pytest.raises(MailError) as info:
        build_email(render_report(report_run(), cluster=""), sender=sender, recipients=recipients)
    assert info.value.permanent is True
    assert "evil" not in str(info.value)
    assert "X: y" not in str(info.value)


def rolled_back(run: Run) -> Run:
    """The example run, rolled back to revision 11 (core/outcomes/rollback.py) by the operator."""
    outcome = rollbacks.record_rollback_outcome(
        run.status, RollbackRecord(target=11, attempts=1), now=T0, revision=13
    )
    return run.model_copy(update={"status": outcome.status})


def test_a_rolled_back_run_says_so_in_the_subject_and_both_parts(report_run: MakeRun) -> None:
    report = render_report(rolled_back(report_run(RunPhase.FAILED)), cluster="prod")
    assert report.subject == "[helm-e2e] webhooks r12 in prod: FAILED 2/3, rolled back to r11"
    for part in (report.text, report.html):
        assert "rolled back to revision 11 (revision 13)" in part


def test_a_run_that_could_not_roll_back_says_why(report_run: MakeRun) -> None:
    run = report_run(RunPhase.FAILED)
    status = rollbacks.with_rollback(
        run.status,
        T0,
        "False",
        "NoPassingRevision",
        "no revision before 12 passed its tests: not rolled back",
    )
    report = render_report(run.model_copy(update={"status": status}), cluster="prod")
    assert report.subject.endswith("FAILED 2/3")
    for part in (report.text, report.html):
        assert "no revision before 12 passed its tests: not rolled back" in part
