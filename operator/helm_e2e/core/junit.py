"""An E2ERun as JUnit XML (pure), for CI systems that gate on test reports.

One <testsuite> named after the run; one <testcase classname="{release}.{source}"> per test, with
<failure> (Failed), <error> (Error) or <skipped> (Cancelled, or not finished). Log tails are cleaned of
ANSI colours and of characters XML 1.0 forbids, so the document always parses.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from .models import Run, TestPhase, TestResult
from .report import clean_log

_SKIPPED = (TestPhase.CANCELLED, TestPhase.PENDING, TestPhase.RUNNING)


def _detail(test: TestResult) -> str:
    lines = [f"exit code {test.exit_code}"] if test.exit_code is not None else []
    if test.pytest and test.pytest.first_failures:
        lines += ["first failures:", *(f"  {f}" for f in test.pytest.first_failures), ""]
    lines.append(test.log_tail or test.message)
    return clean_log("\n".join(lines))


def _testcase(suite: ET.Element, test: TestResult, *, classname: str) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        {"classname": classname, "name": test.name, "time": f"{test.duration_seconds or 0:.3f}"},
    )
    if test.phase == TestPhase.FAILED:
        ET.SubElement(case, "failure", {"message": clean_log(test.reason or "Failed")}).text = _detail(test)
    elif test.phase == TestPhase.ERROR:
        ET.SubElement(case, "error", {"message": clean_log(test.reason or "Error")}).text = _detail(test)
    elif test.phase in _SKIPPED:
        ET.SubElement(case, "skipped", {"message": clean_log(test.reason or test.phase.value)})


def build_junit_xml(run: Run) -> str:
    tests, ref = run.status.tests, run.spec.release
    attributes = {
        "name": run.name,
        "tests": str(len(tests)),
        "failures": str(sum(t.phase == TestPhase.FAILED for t in tests)),
        "errors": str(sum(t.phase == TestPhase.ERROR for t in tests)),
        "skipped": str(sum(t.phase in _SKIPPED for t in tests)),
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
        ("phase", run.status.phase.value),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": value})
    sources = {t.name: t.source for t in run.spec.tests}
    for test in tests:
        source = sources.get(test.name, "hook").replace("/", ".")
        _testcase(suite, test, classname=f"{ref.name}.{source}")
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)
