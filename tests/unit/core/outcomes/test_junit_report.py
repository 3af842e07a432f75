"""JUnit XML of a run: counts, one testcase per test, escaping, always well-formed."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import RunPhase, TestPhase
from helm_e2e.core.outcomes import junit_report as junit
from helm_e2e.core.outcomes.junit_report import build_junit_xml

MakeRun = Callable[..., Run]  # the report_run fixture (conftest.py)

HOSTILE = "<script>alert(1)</script> & ]]> \"quoted\" 'single'"


def parse(xml: str) -> ET.Element:
    assert xml.startswith("<?xml version='1.0' encoding='utf-8'?>\n<testsuite ")
    ET.fromstring(xml.encode())  # what a CI system reading the file does
    return ET.fromstring(xml.split("?>", 1)[1])


def test_suite_counts_tests_failures_errors_skipped_and_time(report_run: MakeRun) -> None:
    suite = parse(build_junit_xml(report_run()))
    assert suite.tag == "testsuite"
    assert suite.attrib["name"] == "webhooks-12"
    assert {k: suite.attrib[k] for k in ("tests", "failures", "errors", "skipped", "time")} == {
        "tests": "3",
        "failures": "1",
        "errors": "0",
        "skipped": "0",
        "time": "40.500",
    }
    assert suite.attrib["timestamp"] == "2026-11-25T10:00:00+00:00"
    properties = {p.attrib["name"]: p.attrib["value"] for p in suite.iter("property")}
    assert properties["imageTag"] == "2.4.1"
    assert properties["revision"] == "12"


def test_each_test_is_a_testcase_classed_by_release_and_source(report_run: MakeRun) -> None:
    suite = parse(build_junit_xml(report_run()))
    cases = [(c.attrib["classname"], c.attrib["name"], c.attrib["time"]) for c in suite.iter("testcase")]
    assert cases == [
        ("webhooks.hook", "webhooks-test-connection", "1.500"),
        ("webhooks.suite.webhooks-e2e", "api", "9.000"),
        ("webhooks.suite.webhooks-e2e", "load", "30.000"),
    ]


def test_a_failed_test_carries_its_reason_and_log_tail(report_run: MakeRun) -> None:
    suite = parse(build_junit_xml(report_run()))
    failure = suite.find("testcase[@name='api']/failure")
    assert failure is not None
    assert failure.attrib["message"] == "Error"
    assert failure.text is not None
    assert failure.text.startswith("exit code 1\nfirst failures:\n  tests/test_api.py::test_checkout")
    assert "E       assert 503 == 200" in failure.text
    assert suite.find("testcase[@name='load']/*") is None


def test_an_errored_test_is_an_error_and_unfinished_ones_are_skipped(report_run: MakeRun) -> None:
    run = report_run(RunPhase.ERROR, failing=TestPhase.ERROR)
    run.status.tests[2].phase = TestPhase.CANCELLED
    run.status.tests[2].reason = "RunDeadline"
    suite = parse(build_junit_xml(run))
    assert (suite.attrib["failures"], suite.attrib["errors"], suite.attrib["skipped"]) == ("0", "1", "1")
    error = suite.find("testcase[@name='api']/error")
    assert error is not None
    assert error.attrib["message"] == "DeadlineExceeded"
    skipped = suite.find("testcase[@name='load']/skipped")
    assert skipped is not None
    assert skipped.attrib["message"] == "RunDeadline"


def test_hostile_log_text_is_escaped_and_round_trips(report_run: MakeRun) -> None:
    xml = build_junit_xml(report_run(log=HOSTILE))
    assert "<script>" not in xml
    failure = parse(xml).find("testcase[@name='api']/failure")
    assert failure is not None
    assert failure.text is not None
    assert failure.text.endswith(HOSTILE)


def test_ansi_colours_and_control_characters_never_make_the_xml_invalid(report_run: MakeRun) -> None:
    xml = build_junit_xml(report_run(log="\x1b[31mE   assert 1 == 2\x1b[0m\x00\x08\x0b"))
    failure = parse(xml).find("testcase[@name='api']/failure")
    assert failure is not None
    assert failure.text is not None
    assert failure.text.endswith("E   assert 1 == 2\ufffd\ufffd\ufffd")


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(codec=None, exclude_categories=()), max_size=200))
def test_any_log_tail_gives_well_formed_xml(report_run: MakeRun, log: str) -> None:
    suite = parse(build_junit_xml(report_run(log=log)))
    assert suite.attrib["failures"] == "1"


# --- one testcase per pytest test, from the tests' junit.xml ---------------------------------------

API_JUNIT = b"""<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="3">
<testcase classname="tests.test_api" name="test_health" file="tests/test_api.py" time="0.5"/>
<testcase classname="tests.test_api.TestCheckout" name="test_pay[eur]" file="tests/test_api.py" time="2.25">
<failure message="assert 503 == 200">E   assert 503 == 200 &lt;script&gt;</failure></testcase>
<testcase classname="tests.test_api" name="test_later" file="tests/test_api.py" time="0">
<skipped message="later"/></testcase>
</testsuite></testsuites>"""


def cases_of(suite: ET.Element) -> list[tuple[str, str, str]]:
    return [
        (c.attrib["classname"], c.attrib["name"], (list(c) or [ET.Element("passed")])[0].tag)
        for c in suite.iter("testcase")
    ]


def test_a_test_with_a_junit_xml_is_one_testcase_per_pytest_test(report_run: MakeRun) -> None:
    suite = parse(build_junit_xml(report_run(), {"api": API_JUNIT}))
    assert cases_of(suite) == [
        ("webhooks.hook", "webhooks-test-connection", "passed"),
        ("webhooks.suite.webhooks-e2e.api", "tests/test_api.py::test_health", "passed"),
        ("webhooks.suite.webhooks-e2e.api", "tests/test_api.py::TestCheckout::test_pay[eur]", "failure"),
        ("webhooks.suite.webhooks-e2e.api", "tests/test_api.py::test_later", "skipped"),
        ("webhooks.suite.webhooks-e2e", "load", "passed"),
    ]
    assert {k: suite.attrib[k] for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "5",
        "failures": "1",
        "errors": "0",
        "skipped": "1",
    }
    failure = suite.find("testcase[@name='tests/test_api.py::TestCheckout::test_pay[eur]']/failure")
    assert failure is not None
    assert failure.attrib["message"] == "assert 503 == 200"
    assert failure.text == "E   assert 503 == 200 <script>"  # markup escaped and back
    assert suite.find("testcase[@name='tests/test_api.py::test_later']/skipped").attrib["message"] == "later"  # type: ignore[union-attr]
    times = [c.attrib["time"] for c in suite.iter("testcase")]
    assert times[1:4] == ["0.500", "2.250", "0.000"]


def test_a_failed_pod_whose_junit_xml_shows_no_failure_keeps_its_pod_testcase(report_run: MakeRun) -> None:
    passing = API_JUNIT.replace(b"<failure", b"<system-out").replace(b"</failure>", b"</system-out>")
    suite = parse(build_junit_xml(report_run(), {"api": passing}))
    assert ("webhooks.suite.webhooks-e2e", "api", "failure") in cases_of(suite)
    assert suite.attrib["failures"] == "1"
    note = suite.find("testcase[@name='api']/system-out")
    assert note is not None
    assert note.text == "helm-e2e: the pod failed; junit.xml shows no failure"


@pytest.mark.parametrize(
    "report",
    [b"<!DOCTYPE x [<!ENTITY a 'b'>]><testsuite/>", b"garbage", b"<testsuite></testsuite>"],
)
def test_an_unreadable_or_empty_junit_xml_falls_back_to_the_pod(report_run: MakeRun, report: bytes) -> None:
    suite = parse(build_junit_xml(report_run(), {"api": report}))
    assert cases_of(suite) == [
        ("webhooks.hook", "webhooks-test-connection", "passed"),
        ("webhooks.suite.webhooks-e2e", "api", "failure"),
        ("webhooks.suite.webhooks-e2e", "load", "passed"),
    ]
    note = suite.find("testcase[@name='api']/system-out")
    assert note is not None
    assert note.text is not None
    assert note.text.startswith("helm-e2e: ")


def test_reports_of_passing_tests_and_of_unknown_names(report_run: MakeRun) -> None:
    run = report_run(RunPhase.SUCCEEDED)
    one = b"<testsuite><testcase classname='t' name='test_a' file='t.py'/></testsuite>"
    suite = parse(build_junit_xml(run, {"load": one, "no-such-test": API_JUNIT}))
    assert cases_of(suite) == [
        ("webhooks.hook", "webhooks-test-connection", "passed"),
        ("webhooks.suite.webhooks-e2e", "api", "passed"),
        ("webhooks.suite.webhooks-e2e.load", "t.py::test_a", "passed"),
    ]


def test_the_number_of_testcases_is_bounded_and_the_rest_is_counted(
    report_run: MakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(junit, "MAX_CASES", 3)
    many = b"<testsuite>" + b"".join(b"<testcase name='t%d'/>" % i for i in range(10)) + b"</testsuite>"
    suite = parse(build_junit_xml(report_run(RunPhase.SUCCEEDED), {"api": many}))
    assert [c.attrib["name"] for c in suite.iter("testcase")] == [
        "webhooks-test-connection",
        "t0",
        "t1",
        "load",  # one per pod is always there; the limit is on the testcases from junit.xml files
    ]
    properties = {p.attrib["name"]: p.attrib["value"] for p in suite.iter("property")}
    assert properties["notListed.api"] == "8 testcases over the limit of 3"


@settings(max_examples=150, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200))
def test_any_pytest_id_or_message_gives_well_formed_xml(report_run: MakeRun, text: str) -> None:
    from xml.sax.saxutils import escape, quoteattr

    report = (
        f"<testsuite><testcase classname={quoteattr(text)} name={quoteattr(text)}>"
        f"<error message={quoteattr(text)}>{escape(text)}</error></testcase></testsuite>"
    ).encode()
    suite = parse(build_junit_xml(report_run(), {"api": report}))
    assert suite.attrib["tests"] == str(len(list(suite.iter("testcase"))))


def test_the_tests_to_fetch_a_junit_xml_for_are_those_that_stored_one(report_run: MakeRun) -> None:
    from helm_e2e.core.model.run_status import ArtifactFile
    from helm_e2e.core.results.junit_reader import MAX_BYTES

    run = report_run()
    run.status.tests[1].artifacts = [
        ArtifactFile(name="pytest-output.txt", size=10, sha256="a" * 64),
        ArtifactFile(name="junit.xml", size=900, sha256="b" * 64),
    ]
    run.status.tests[2].artifacts = [ArtifactFile(name="junit.xml", size=MAX_BYTES + 1, sha256="c" * 64)]
    run.status.tests[0].artifacts = [ArtifactFile(name="reports/junit.xml", size=9, sha256="d" * 64)]
    assert junit.junit_artifacts(run) == ["api"]


@settings(max_examples=150, deadline=None)
@given(
    st.binary(max_size=1000) | st.builds(lambda b: API_JUNIT[: len(b)], st.binary(max_size=len(API_JUNIT)))
)
def test_any_report_bytes_give_well_formed_xml_with_the_run_s_tests(
    report_run: MakeRun, report: bytes
) -> None:
    suite = parse(build_junit_xml(report_run(), {"api": report, "load": report}))
    names = [c.attrib["name"] for c in suite.iter("testcase")]
    assert names[0] == "webhooks-test-connection"
    assert suite.attrib["tests"] == str(len(names))
    assert int(suite.attrib["failures"]) >= 1  # the failed api test is never lost
