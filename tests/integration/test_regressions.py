"""Regressions on the real apiserver (kwok pods, real helm, a real SMTP sink): pass, fail one test, pass."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness import ROOT, Cluster, MailSink, wait_until

TINY = str(ROOT / "tests" / "data" / "charts" / "tiny")
FAILING_ID = "tests/test_api.py::test_token"


def regression(cluster: Cluster, namespace: str, run: str) -> dict[str, Any] | None:
    body = cluster.try_get_json("e2erun", "-n", namespace, run) or {}
    result: dict[str, Any] | None = body.get("status", {}).get("regression")
    return result


def upgrade(cluster: Cluster, namespace: str, tag: str, values: Path | None = None) -> None:
    extra = ["-f", str(values)] if values else []
    cluster.helm("upgrade", "shop", TINY, "-n", namespace, "--set", f"image.tag={tag}", *extra)


def test_a_new_failure_is_named_in_status_subject_and_report_and_then_fixed(
    cluster: Cluster, namespace: str, start_operator: Any, sink: tuple[MailSink, int], tmp_path: Path
) -> None:
    mails, port = sink
    start_operator(
        smtp_host="127.0.0.1", smtp_port=str(port), mail_to="dev@example.com", cluster_name="local"
    )
    cluster.helm("install", "shop", TINY, "-n", namespace, "--set", "image.tag=1.0.0")
    wait_until(lambda: len(mails.messages) == 1, what="the report of revision 1")
    assert regression(cluster, namespace, "shop-1") is None  # nothing before it

    # revision 2: the test pod ends as the helm-e2e pytest plugin leaves a failing run
    failing = tmp_path / "failing.yaml"
    summary = {"passed": 4, "failed": 1, "skipped": 0, "errors": 0, "firstFailures": [FAILING_ID]}
    failing.write_text(json.dumps({"test": {"exitCode": "1", "terminationMessage": json.dumps(summary)}}))
    upgrade(cluster, namespace, "2.0.0", failing)
    wait_until(lambda: len(mails.messages) == 2, what="the report of revision 2")
    assert regression(cluster, namespace, "shop-2") == {
        "comparedWith": "shop-1",
        "revision": 1,
        "newlyFailing": [f"shop-smoke::{FAILING_ID}"],
        "stillFailing": [],
        "fixed": [],
    }
    report = mails.messages[1]
    assert report["Subject"] == "[helm-e2e] shop r2 in local: FAILED 0/1 (1 new)"
    html = report.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert ">new</span></td><td" in html
    assert f"shop-smoke::{FAILING_ID}" in html
    assert 'title="r1 · image 1.0.0 · Succeeded 1/1 · ' in html  # the history strip, both revisions
    assert 'title="r2 · image 2.0.0 · Failed 0/1 · ' in html
    assert html.index('title="r1 ') < html.index('title="r2 ')

    upgrade(cluster, namespace, "3.0.0")
    wait_until(lambda: len(mails.messages) == 3, what="the report of revision 3")
    fixed = regression(cluster, namespace, "shop-3")
    assert fixed is not None
    assert (fixed["comparedWith"], fixed["fixed"], fixed["newlyFailing"]) == (
        "shop-2",
        [f"shop-smoke::{FAILING_ID}"],
        [],
    )
    report = mails.messages[2]
    assert report["Subject"] == "[helm-e2e] shop r3 in local: PASSED 1/1"
    text = report.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"FIXED      shop-smoke::{FAILING_ID}" in text
    assert "History     r1 ✓ " in text
    assert " · r2 ✗ " in text
    assert " · r3 ✓ " in text
