"""An E2ERun as JUnit XML (pure), for CI systems that gate on test reports.

One <testsuite> named after the run. A test whose junit.xml is given (`reports`, the files the test left
in its artifacts directory) becomes one <testcase classname="{release}.{source}.{test}" name="{pytest id}">
per pytest test; any other test one <testcase classname="{release}.{source}"> for its pod, as does a
test that failed while its junit.xml shows no failure (a crash after pytest, an OOM kill) or whose
junit.xml cannot be read. <failure> (Failed), <error> (Error) or <skipped> (Cancelled, or not finished).
Texts are cleaned of ANSI colours and of characters XML 1.0 forbids, so the document always parses.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass

from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import TestPhase, TestResult
from helm_e2e.core.model.text import clean_log
from helm_e2e.core.results.junit_reader import JUNIT_ARTIFACT, MAX_BYTES, JunitCase, Outcome, parse_junit
from helm_e2e.errors import JunitInvalid

MAX_CASES = 20_000  # testcases from junit.xml files in one document, over all tests
_SKIPPED = (TestPhase.CANCELLED, TestPhase.PENDING, TestPhase.RUNNING)
_KINDS = {Outcome.FAILED: "failure", Outcome.ERROR: "error", Outcome.SKIPPED: "skipped"}


@dataclass(frozen=True)
class _Case:
    classname: str
    name: str
    time: float
    kind: str = ""  # failure | error | skipped | "" (passed)
    message: str = ""
    detail: str = ""
    note: str = ""  # system-out


def _detail(test: TestResult) -> str:
    lines = [f"exit code {test.exit_code}"] if test.exit_code is not None else []
    if test.pytest and test.pytest.first_failures:
        lines += ["first failures:", *(f"  {f}" for f in test.pytest.first_failures), ""]
    lines.append(test.log_tail or test.message)
    return "\n".join(lines)


def _pod_case(test: TestResult, *, classname: str, note: str = "") -> _Case:
    time = test.duration_seconds or 0
    if test.phase == TestPhase.FAILED:
        return _Case(classname, test.name, time, "failure", test.reason or "Failed", _detail(test), note)
    if test.phase == TestPhase.ERROR:
        return _Case(classname, test.name, time, "error", test.reason or "Error", _detail(test), note)
    if test.phase in _SKIPPED:
        return _Case(classname, test.name, time, "skipped", test.reason or test.phase.value, note=note)
    return _Case(classname, test.name, time, note=note)


def _pytest_case(case: JunitCase, *, classname: str) -> _Case:
    kind = _KINDS.get(case.outcome, "")
    return _Case(classname, case.id, case.time or 0, kind, case.message, case.detail if kind else "")


def _cases(test: TestResult, *, base: str, report: bytes | None, room: int) -> tuple[list[_Case], int]:
    """The test's testcases (at most `room` from its junit.xml) and how many of those were left out."""
    if report is None:
        return [_pod_case(test, classname=base)], 0
    try:
        parsed = parse_junit(report, max_cases=max(room, 0))
    except JunitInvalid as e:
        return [_pod_case(test, classname=base, note=f"helm-e2e: junit.xml of {test.name} not used: {e}")], 0
    cases = [_pytest_case(c, classname=f"{base}.{test.name}") for c in parsed.cases]
    failing = any(c.outcome in (Outcome.FAILED, Outcome.ERROR) for c in parsed.cases)
    if not parsed.total:
        cases.append(_pod_case(test, classname=base, note="helm-e2e: the junit.xml has no testcase"))
    elif test.phase in (TestPhase.FAILED, TestPhase.ERROR) and not failing and not parsed.truncated:
        cases.append(
            _pod_case(test, classname=base, note="helm-e2e: the pod failed; junit.xml shows no failure")
        )
    return cases, parsed.total - len(parsed.cases)


def _element(suite: ET.Element, case: _Case) -> None:
    attrs = {"classname": clean_log(case.classname), "name": clean_log(case.name), "time": f"{case.time:.3f}"}
    element = ET.SubElement(suite, "testcase", attrs)
    if case.kind:
        child = ET.SubElement(element, case.kind, {"message": clean_log(case.message)})
        if case.detail:
            child.text = clean_log(case.detail)
    if case.note:
        ET.SubElement(element, "system-out").text = clean_log(case.note)


def _all_cases(run: Run, reports: Mapping[str, bytes]) -> tuple[list[_Case], dict[str, int]]:
    sources = {t.name: t.source for t in run.spec.tests}
    cases: list[_Case] = []
    not_listed: dict[str, int] = {}
    for test in run.status.tests:
        base = f"{run.spec.release.name}.{sources.get(test.name, 'hook').replace('/', '.')}"
        more, left_out = _cases(test, base=base, report=reports.get(test.name), room=MAX_CASES - len(cases))
        cases += more
        if left_out:
            not_listed[test.name] = left_out
    return cases, not_listed


def junit_artifacts(run: Run) -> list[str]:
    """The tests whose junit.xml to fetch for `build_junit_xml`: those that stored one of a readable size."""
    return [
        test.name
        for test in run.status.tests
        if any(a.name == JUNIT_ARTIFACT and a.size <= MAX_BYTES for a in test.artifacts)
    ]


def build_junit_xml(run: Run, reports: Mapping[str, bytes] | None = None) -> str:
    """The run as JUnit XML; `reports` maps a test's name to the bytes of its junit.xml."""
    cases, not_listed = _all_cases(run, reports or {})
    tests, ref = run.status.tests, run.spec.release
    attributes = {
        "name": run.name,
        "tests": str(len(cases)),
        "failures": str(sum(c.kind == "failure" for c in cases)),
        "errors": str(sum(c.kind == "error" for c in cases)),
        "skipped": str(sum(c.kind == "skipped" for c in cases)),
        "time": f"{sum(t.duration_seconds or 0 for t in tests):.3f}",
    }
    if run.status.started_at:
        attributes["timestamp"] = run.status.started_at.isoformat()
    suite = ET.Element("testsuite", attributes)
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("release", ref.name),
        ("namespace", ref.namespace),
        ("revision", str(ref.revision)),
        ("chart", f"{ref.chart}-{ref.chart_version}"),
        ("imageTag", ref.image_tag),
        ("trigger", ref.trigger.value),
        *((("commit", ref.commit),) if ref.commit else ()),
        ("phase", run.status.phase.value),
        *(
            (f"notListed.{test}", f"{n} testcases over the limit of {MAX_CASES}")
            for test, n in not_listed.items()
        ),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": clean_log(value)})
    for case in cases:
        _element(suite, case)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)
