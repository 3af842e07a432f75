"""Webhook payloads (pure): a CloudEvent in structured mode, Slack and Microsoft Teams messages, the HMAC.

Every payload is built from `build_summary`, which holds what the run's status says about the release and
its tests — names, phases, counts, times — and nothing else: no log tails, no pytest output, no test
messages, so never a release value or secret data. The same run always yields the same bytes (the event's
`time` is the run's completion), so a repeat after a crash carries the same id and the same signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from cloudevents.core.bindings import http as ce_http
from cloudevents.core.v1.event import CloudEvent

from helm_e2e.core.model import names
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import RunPhase, TestPhase
from helm_e2e.core.outcomes.outbox import Target, TargetType
from helm_e2e.core.outcomes.report import build_subject

EVENT_TYPE = "dev.helm-e2e.run.completed"
SIGNATURE_HEADER = "X-Helm-E2E-Signature"
USER_AGENT = "helm-e2e"
_ICONS = {RunPhase.SUCCEEDED: ":white_check_mark:", RunPhase.FAILED: ":x:", RunPhase.ERROR: ":warning:"}
_TEAMS_COLORS = {RunPhase.SUCCEEDED: "Good", RunPhase.FAILED: "Attention", RunPhase.ERROR: "Warning"}
MAX_LISTED = 20  # failed tests named in a chat message; the rest are counted


@dataclass(frozen=True)
class WebhookRequest:
    """One POST: the body is sent byte for byte as built (it is what the signature covers)."""

    headers: dict[str, str]
    body: bytes

    def __repr__(self) -> str:
        return f"WebhookRequest({len(self.body)} bytes)"


def build_event_id(run: Run) -> str:
    """Deterministic from the run's uid: a repeated delivery is recognisable (CloudEvents: source + id)."""
    return f"e2erun.{run.uid or f'{run.namespace}.{run.name}'}"


def build_source(run: Run) -> str:
    return f"/namespaces/{run.namespace}/e2eruns/{run.name}"


def build_summary(run: Run, *, cluster: str) -> dict[str, Any]:
    """The run as data for receivers: identity, release, phase, counts, times, per-test outcome."""
    ref, status = run.spec.release, run.status
    return {
        "run": {
            "name": run.name,
            "namespace": run.namespace,
            "uid": run.uid,
            "attempt": run.spec.attempt or 1,
        },
        "cluster": cluster or ref.namespace,
        "release": {
            "name": ref.name,
            "namespace": ref.namespace,
            "revision": ref.revision,
            "chart": ref.chart,
            "chartVersion": ref.chart_version,
            "appVersion": ref.app_version,
            "imageTag": ref.image_tag,
            "trigger": ref.trigger.value,
            "commit": ref.commit or None,
        },
        "phase": status.phase.value,
        "summary": status.summary.model_dump(by_alias=True, mode="json"),
        "startedAt": status.started_at.isoformat() if status.started_at else None,
        "completedAt": status.completed_at.isoformat() if status.completed_at else None,
        "tests": [
            {
                "name": t.name,
                "phase": t.phase.value,
                "reason": t.reason,
                "exitCode": t.exit_code,
                "durationSeconds": t.duration_seconds,
                "flaky": t.flaky,
            }
            for t in status.tests
        ],
    }


def build_cloudevent(run: Run, *, cluster: str) -> WebhookRequest:
    """Structured content mode (application/cloudevents+json), built and serialized by the CloudEvents SDK."""
    attributes: dict[str, Any] = {
        "type": EVENT_TYPE,
        "source": build_source(run),
        "id": build_event_id(run),
        "subject": f"{run.spec.release.name}/r{run.spec.release.revision}/{run.status.phase.value}",
        "datacontenttype": "application/json",
    }
    if when := run.status.completed_at or run.status.started_at or run.created_at:
        attributes["time"] = when
    event = CloudEvent(attributes, data=build_summary(run, cluster=cluster))
    message = ce_http.to_structured_event(event)
    return WebhookRequest(headers=dict(message.headers), body=message.body)


def _failed(run: Run) -> list[str]:
    return [t.name for t in run.status.tests if t.phase in (TestPhase.FAILED, TestPhase.ERROR)]


def _slack_escape(text: str) -> str:
    """Slack's three control characters in mrkdwn (a name cannot become a link or a mention)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _facts(run: Run, *, cluster: str) -> list[tuple[str, str]]:
    ref, summary = run.spec.release, run.status.summary
    return [
        ("Release", f"{ref.namespace}/{ref.name} r{ref.revision}"),
        ("Chart", f"{ref.chart} {ref.chart_version}"),
        ("Cluster", cluster or ref.namespace),
        ("Result", f"{run.status.phase.value}: {summary.passed}/{summary.total} passed"),
    ]


def _failed_line(run: Run) -> str:
    failed = _failed(run)
    if not failed:
        return ""
    more = f" and {len(failed) - MAX_LISTED} more" if len(failed) > MAX_LISTED else ""
    return "Failed: " + ", ".join(failed[:MAX_LISTED]) + more


def build_slack(run: Run, *, cluster: str) -> WebhookRequest:
    """An incoming-webhook message: `text` (the notification fallback) and Block Kit `blocks`."""
    subject = build_subject(run, cluster=cluster)
    icon = _ICONS.get(run.status.phase, ":information_source:")
    fields = [
        {"type": "mrkdwn", "text": f"*{k}*\n{_slack_escape(v)}"} for k, v in _facts(run, cluster=cluster)
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{icon} {subject}"[:150], "emoji": True}},
        {"type": "section", "fields": fields},
    ]
    if failed := _failed_line(run):
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(failed)[:3000]}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"E2ERun `{run.name}`"}]})
    return _json_request({"text": _slack_escape(f"{icon} {subject}"), "blocks": blocks})


def build_teams(run: Run, *, cluster: str) -> WebhookRequest:
    """A Teams (Workflows / Power Automate) incoming-webhook message carrying an Adaptive Card 1.4."""
    subject = build_subject(run, cluster=cluster)
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": subject,
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "color": _TEAMS_COLORS.get(run.status.phase, "Default"),
        },
        {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in _facts(run, cluster=cluster)]},
    ]
    if failed := _failed_line(run):
        body.append({"type": "TextBlock", "text": failed, "wrap": True})
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    return _json_request(
        {
            "type": "message",
            "summary": subject,
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
        }
    )


def _json_request(payload: dict[str, Any]) -> WebhookRequest:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return WebhookRequest(headers={"content-type": "application/json"}, body=body)


def sign(body: bytes, key: bytes) -> str:
    """The signature header's value: `sha256=<hex HMAC-SHA256 of the raw body>`."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def build_request(target: Target, run: Run, *, cluster: str) -> WebhookRequest:
    """The POST for one target; signed when the target has a signing key."""
    builders = {
        TargetType.CLOUDEVENTS: build_cloudevent,
        TargetType.SLACK: build_slack,
        TargetType.TEAMS: build_teams,
    }
    request = builders[target.type](run, cluster=cluster)
    headers = {**request.headers, "user-agent": f"{USER_AGENT} ({names.GROUP})"}
    if target.signing_key:
        headers[SIGNATURE_HEADER] = sign(request.body, target.signing_key)
    return WebhookRequest(headers=headers, body=request.body)
