"""The report's "Failing pytest tests" section (templates/_pytest_failures.*): ids with their messages."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import PytestFailure, PytestSummary, RunPhase, TestPhase
from helm_e2e.core.outcomes.report import build_email, render_report

MakeRun = Callable[..., Run]  # the report_run fixture (conftest.py)
HOSTILE = '<script>alert(1)</script>\n</td><img src=x onerror="steal()">'


def section(text: str) -> str:
    """The text part's section, from its heading to the next blank line."""
    match = re.search(r"\nFailing pytest tests\n(.*?)\n\n", text, re.S)
    assert match is not None, text
    return match.group(1)


def with_failures(run: Run, *failures: PytestFailure) -> Run:
    run.status.tests[1].failures = list(failures)
    return run


def test_text_lists_each_failing_pytest_id_with_its_message_under_its_test(report_run: MakeRun) -> None:
    run = with_failures(
        report_run(),
        PytestFailure(id="tests/test_api.py::test_checkout", message="assert 503 == 200"),
        PytestFailure(
            id="tests/test_api.py::TestLogin::test_token[a]", message="AssertionError:\n  multi\tline"
        ),
        PytestFailure(id="tests/test_api.py::test_no_message"),
    )
    assert section(render_report(run, cluster="").text) == (
        "  api\n"
        "    - tests/test_api.py::test_checkout: assert 503 == 200\n"
        "    - tests/test_api.py::TestLogin::test_token[a]: AssertionError: multi line\n"
        "    - tests/test_api.py::test_no_message"
    )


def test_html_lists_them_in_a_table_after_the_tests(report_run: MakeRun) -> None:
    run = with_failures(
        report_run(), PytestFailure(id="tests/test_api.py::test_checkout", message="assert 503 == 200")
    )
    html = render_report(run, cluster="").html
    heading = html.index("Failing pytest tests")
    assert html.index("<th ") < heading < html.index("api: last log lines")
    row = html[heading:]
    assert ">tests/test_api.py::test_checkout</td>" in row
    assert ">assert 503 == 200</td>" in row


def test_without_junit_failures_the_ids_of_the_summary_are_listed_without_messages(
    report_run: MakeRun,
) -> None:
    run = report_run()
    run.status.tests[1].pytest = PytestSummary(
        failed=2, first_failures=["tests/a.py::test_x", "tests/b.py::test_y"]
    )
    text = render_report(run, cluster="").text
    assert section(text) == "  api\n    - tests/a.py::test_x\n    - tests/b.py::test_y"
    assert "tests/a.py::test_x" in render_report(run, cluster="").html.split("Failing pytest tests")[1]


def test_no_section_when_no_failed_test_names_a_pytest_failure(report_run: MakeRun) -> None:
    run = report_run()
    run.status.tests[1].pytest = None
    report = render_report(run, cluster="")
    assert "Failing pytest tests" not in report.text
    assert "Failing pytest tests" not in report.html
    passed = with_failures(report_run(RunPhase.SUCCEEDED), PytestFailure(id="t.py::test_flaky", message="x"))
    assert "Failing pytest tests" not in render_report(passed, cluster="").text  # only tests that failed


def test_an_errored_test_is_listed_too(report_run: MakeRun) -> None:
    run = with_failures(report_run(RunPhase.ERROR, failing=TestPhase.ERROR), PytestFailure(id="t.py::test_e"))
    assert section(render_report(run, cluster="").text) == "  api\n    - t.py::test_e"


def test_hostile_ids_and_messages_are_escaped_in_html(report_run: MakeRun) -> None:
    run = with_failures(report_run(), PytestFailure(id=HOSTILE, message=HOSTILE))
    report = render_report(run, cluster="")
    part = report.html.split("Failing pytest tests")[1]
    assert "<script>" not in part
    assert "<img" not in part
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in part
    assert "<script>alert(1)</script>" in report.text


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300), st.text(max_size=300))
def test_no_id_or_message_can_inject_markup(report_run: MakeRun, node: str, message: str) -> None:
    plain = render_report(with_failures(report_run(), PytestFailure(id="t", message="m")), cluster="").html
    html = render_report(
        with_failures(report_run(), PytestFailure(id=node, message=message)), cluster=""
    ).html
    assert "<script" not in html.lower()
    for tag in ("<td", "</td>", "<tr", "</tr>", "<table", "</table>", "<img"):
        assert html.count(tag) == plain.count(tag)


@settings(max_examples=100, deadline=None)
@given(st.text(st.characters(codec=None, exclude_categories=()), max_size=200))
def test_any_id_or_message_yields_a_message_that_serialises(report_run: MakeRun, text: str) -> None:
    run = with_failures(report_run(), PytestFailure(id=text, message=text))
    report = render_report(run, cluster="")
    message = build_email(report, sender="e2e@x.io", recipients=["a@x.io"])
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"] == report.message_id
