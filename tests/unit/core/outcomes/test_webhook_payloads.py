"""Webhook payloads (pure): the CloudEvent as the CloudEvents SDK's own parser reads it, the HMAC, and the
Slack and Teams messages; none of them carries a log tail or anything else beyond the run's summary."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import runs
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.v1.event import CloudEvent

from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import PytestSummary, RunPhase, RunStatus, Summary, TestPhase, TestResult
from helm_e2e.core.outcomes import webhook_payloads
from helm_e2e.core.outcomes.outbox import Target, TargetType

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
SECRET_LOG = "password=hunter2 <@U123> <!channel>"


def failed_run(*, tests: int = 2) -> Run:
    results = [
        TestResult(
            name=f"api-{i}",
            phase=TestPhase.FAILED if i else TestPhase.SUCCEEDED,
            exit_code=1 if i else 0,
            reason="Error" if i else "",
            message=SECRET_LOG,
            log_tail=SECRET_LOG,
            failed_log_tail=SECRET_LOG,
            duration_seconds=1.5,
            pytest=PytestSummary(failed=1, first_failures=[SECRET_LOG]),
        )
        for i in range(tests)
    ]
    status = RunStatus(
        phase=RunPhase.FAILED,
        started_at=T0,
        completed_at=T0 + timedelta(seconds=42),
        summary=Summary(total=tests, passed=1, failed=tests - 1),
        tests=results,
    )
    release = {
        "name": "shop",
        "namespace": "prod",
        "revision": 7,
        "chart": "shop",
        "chart_version": "1.2.3",
        "app_version": "2.0",
        "image_tag": "2.0.1",
        "commit": "9fceb02d0ae598e95dc970b74767f19372d61af8",
    }
    return runs.make_run(release=release, uid="1b2c-uid", status=status)


def test_the_cloudevent_is_structured_mode_and_the_sdks_parser_reads_its_attributes() -> None:
    request = webhook_payloads.build_cloudevent(failed_run(), cluster="eu-1")
    assert request.headers["content-type"] == "application/cloudevents+json"
    event = ce_http.from_structured_event(ce_http.HTTPMessage(headers=request.headers, body=request.body))
    assert isinstance(event, CloudEvent)
    assert event.get_specversion() == "1.0"
    assert event.get_type() == "dev.helm-e2e.run.completed"
    assert event.get_source() == "/namespaces/prod/e2eruns/shop-7"
    assert event.get_id() == "e2erun.1b2c-uid"
    assert event.get_subject() == "shop/r7/Failed"
    assert event.get_time() == T0 + timedelta(seconds=42)
    assert event.get_datacontenttype() == "application/json"
    data = event.get_data()
    assert isinstance(data, dict)
    assert data["phase"] == "Failed"
    assert (
        data["release"]
        == {
            "name": "shop",
            "namespace": "prod",
            "revision": 7,
            "chart": "shop",
            "chartVersion": "1.2.3",
            "appVersion": "2.0",
            "imageTag": "2.0.1",
            "trigger": "upgrade",
            "commit": "9fceb02d0ae598e95dc970b74767f19372d61af8",  # the deploy's git revision (core/sources/flux.py)
        }
    )
    assert data["summary"]["failed"] == 1
    assert [t["name"] for t in data["tests"]] == ["api-0", "api-1"]
    assert data["cluster"] == "eu-1"


def test_the_same_run_always_yields_the_same_event_bytes() -> None:
    a = webhook_payloads.build_cloudevent(failed_run(), cluster="eu-1")
    b = webhook_payloads.build_cloudevent(failed_run(), cluster="eu-1")
    assert a.body == b.body


def test_no_payload_carries_log_tails_test_messages_or_pytest_output() -> None:
    run = failed_run()
    for build in (
        webhook_payloads.build_cloudevent,
        webhook_payloads.build_slack,
        webhook_payloads.build_teams,
    ):
        body = build(run, cluster="").body.decode()
        assert "hunter2" not in body, build.__name__


def test_a_signed_target_gets_an_hmac_sha256_of_the_raw_body() -> None:
    target = Target("ops", TargetType.CLOUDEVENTS, "https://hooks.example/e", b"k3y")
    request = webhook_payloads.build_request(target, failed_run(), cluster="")
    expected = hmac.new(b"k3y", request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Helm-E2E-Signature"] == f"sha256={expected}"
    assert request.headers["content-type"] == "application/cloudevents+json"
    assert request.headers["user-agent"].startswith("helm-e2e")


def test_an_unsigned_target_gets_no_signature_header() -> None:
    target = Target("chat", TargetType.SLACK, "https://hooks.slack.example/x")
    request = webhook_payloads.build_request(target, failed_run(), cluster="")
    assert "X-Helm-E2E-Signature" not in request.headers
    assert request.headers["content-type"] == "application/json"


def test_the_slack_message_has_a_text_fallback_and_blocks_naming_the_failed_tests() -> None:
    payload = json.loads(webhook_payloads.build_slack(failed_run(), cluster="eu-1").body)
    assert payload["text"] == ":x: [helm-e2e] shop r7 in eu-1: FAILED 1/2"
    types = [b["type"] for b in payload["blocks"]]
    assert types == ["header", "section", "section", "context"]
    assert len(payload["blocks"][0]["text"]["text"]) <= 150
    assert payload["blocks"][2]["text"]["text"] == "Failed: api-1"


def test_slack_control_characters_are_escaped() -> None:
    run = failed_run()
    run.spec.release.chart = "<!channel>&"
    payload = json.loads(webhook_payloads.build_slack(run, cluster="").body)
    chart = next(f["text"] for f in payload["blocks"][1]["fields"] if f["text"].startswith("*Chart*"))
    assert "&lt;!channel&gt;&amp;" in chart
    assert "<!channel>" not in json.dumps(payload)


def test_a_long_list_of_failed_tests_is_cut_and_counted() -> None:
    payload = json.loads(webhook_payloads.build_slack(failed_run(tests=30), cluster="").body)
    assert payload["blocks"][2]["text"]["text"].endswith("and 9 more")


def test_the_teams_message_carries_an_adaptive_card() -> None:
    payload = json.loads(webhook_payloads.build_teams(failed_run(), cluster="eu-1").body)
    assert payload["type"] == "message"
    (attachment,) = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0]["text"] == "[helm-e2e] shop r7 in eu-1: FAILED 1/2"
    assert card["body"][0]["color"] == "Attention"
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Release"] == "prod/shop r7"
    assert card["body"][2]["text"] == "Failed: api-1"
