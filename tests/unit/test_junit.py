"""JUnit XML of a run: counts, one testcase per test, escaping, always well-formed."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from helm_e2e.core.junit import build_junit_xml
from helm_e2e.core.models import Run, RunPhase, TestPhase

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
