"""An E2ERun as JUnit XML (pure), for CI systems that gate on test reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from .models import Run, TestPhase


def build_junit_xml(run: Run) -> str:
    tests = run.status.tests
    suite = ET.Element(
        "testsuite",
        {
            "name": run.name,
            "tests": str(len(tests)),
            "failures": str(sum(t.phase == TestPhase.FAILED for t in tests)),
            "errors": str(sum(t.phase == TestPhase.ERROR for t in tests)),
            "skipped": str(
                sum(t.phase in (TestPhase.CANCELLED, TestPhase.PENDING, TestPhase.RUNNING) for t in tests)
            ),
            "time": f"{sum(t.duration_seconds or 0 for t in tests):.3f}",
        },
    )
    sources = {t.name: t.source for t in run.spec.tests}
    for t in tests:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": f"{run.spec.release.name}.{sources.get(t.name, 'hook').replace('/', '.')}",
                "name": t.name,
                "time": f"{t.duration_seconds or 0:.3f}",
            },
        )
        detail = t.log_tail or t.message
        if t.phase == TestPhase.FAILED:
            ET.SubElement(case, "failure", {"message": t.reason or "failed"}).text = detail
        elif t.phase == TestPhase.ERROR:
            ET.SubElement(case, "error", {"message": t.reason or "error"}).text = detail
        elif t.phase != TestPhase.SUCCEEDED:
            ET.SubElement(case, "skipped", {"message": t.phase.value})
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)
