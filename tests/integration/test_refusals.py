"""Every run ends: an API refusal ends its test at once with the API's own reason, everywhere a user looks."""

from __future__ import annotations

import json
from typing import Any

from harness import Cluster, MailSink, wait_until
from test_mail_delivery import TINY
from test_operator import wait_run
from test_shipping import cli


def test_a_pod_refused_by_a_quota_ends_error_with_the_apis_reason_in_status_event_wait_and_mail(
    cluster: Cluster, namespace: str, start_operator: Any, sink: tuple[MailSink, int]
) -> None:
    mail, smtp_port = sink
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-pods", "namespace": namespace},
        "spec": {"hard": {"pods": "0"}},
    }
    cluster.apply(json.dumps(quota), namespace)
    start_operator(smtp_host="127.0.0.1", smtp_port=str(smtp_port), mail_to="dev@example.com")
    cluster.helm("install", "q", TINY, "-n", namespace)

    run = wait_run(cluster, namespace, "q-1", timeout=60)
    test = run["status"]["tests"][0]
    assert (run["status"]["phase"], test["phase"], test["reason"]) == ("Error", "Error", "Forbidden")
    assert "exceeded quota" in test["message"]
    items = cluster.get_json("events", "-n", namespace, "--field-selector", "involvedObject.name=q-1")[
        "items"
    ]
    assert any(e["reason"] == "TestFailed" and "Forbidden" in e["message"] for e in items)

    waited = cli(cluster, "wait", "q", "-n", namespace, "--timeout", "30", "--interval", "0.5")
    assert waited.returncode == 2
    assert "Forbidden: " in waited.stdout
    assert "exceeded quota" in waited.stdout

    report = wait_until(lambda: mail.messages[:1], what="the report of the refused run")[0]
    assert "ERROR" in str(report["Subject"])
    assert "exceeded quota" in report.get_body(preferencelist=("plain",)).get_content()
