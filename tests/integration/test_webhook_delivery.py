"""Webhook notifications against a real HTTP receiver on 127.0.0.1: each target once, signed; a receiver
that is down (not listening, then answering 503) still gets exactly one delivery, recorded as Sent."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest
from harness import ROOT, Cluster, assert_stays, wait_until

from webhook_receiver import Receiver

TINY = str(ROOT / "tests" / "data" / "charts" / "tiny")
KEY = "integration-hmac-key"


@pytest.fixture(autouse=True)
def our_crds(cluster: Cluster) -> None:
    """The shared cluster's CRDs are whoever applied last: ours declare report.webhooks and notifications."""
    cluster.kubectl("apply", "-f", str(ROOT / "crds"))


@pytest.fixture
def receiver(unused_tcp_port: int) -> Iterator[Receiver]:
    r = Receiver(port=unused_tcp_port, key=KEY.encode()).start_in_thread()
    yield r
    r.stop_thread()


def targets_secret(cluster: Cluster, namespace: str, port: int) -> None:
    """The admin's targets: a signed CloudEvents endpoint and a Slack-compatible one (URLs only here)."""
    data = {
        "ops": json.dumps(
            {"type": "cloudevents", "url": f"http://127.0.0.1:{port}/events/T0KEN", "secretKey": "ops-key"}
        ),
        "ops-key": KEY,
        "chat": json.dumps({"type": "slack", "url": f"http://127.0.0.1:{port}/slack/T0KEN"}),
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "hooks", "namespace": namespace},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }
    cluster.apply(json.dumps(secret), namespace)


def channels(cluster: Cluster, namespace: str, run: str, *, mail: bool = False) -> dict[str, dict[str, Any]]:
    """The run's webhook channels (with `mail`: the e-mail's too, target `@mail`: the same outbox)."""
    body = cluster.try_get_json("e2erun", "-n", namespace, run) or {}
    found = {n["target"]: n for n in body.get("status", {}).get("notifications", [])}
    return found if mail else {t: n for t, n in found.items() if t != "@mail"}


def test_each_webhook_gets_the_run_exactly_once_with_a_valid_signature(
    cluster: Cluster, namespace: str, start_operator: Any, receiver: Receiver
) -> None:
    targets_secret(cluster, namespace, receiver.port)
    op = start_operator(webhooks_secret="hooks", webhooks_namespace=namespace, webhooks="ops,chat")
    cluster.helm("install", "shop", TINY, "-n", namespace)
    wait_until(lambda: len(receiver.accepted()) == 2, what="both webhooks")
    wait_until(
        lambda: {n["state"] for n in channels(cluster, namespace, "shop-1").values()} == {"Sent"},
        what="both channels Sent",
    )
    by_path = {d.path.split("/")[1]: d for d in receiver.deliveries}
    event, slack = by_path["events"], by_path["slack"]
    assert receiver.signature_ok(event)
    assert event.headers["Content-Type"] == "application/cloudevents+json"
    body = json.loads(event.body)
    uid = cluster.get_json("e2erun", "-n", namespace, "shop-1")["metadata"]["uid"]
    assert (body["type"], body["id"], body["source"]) == (
        "dev.helm-e2e.run.completed",
        f"e2erun.{uid}",
        f"/namespaces/{namespace}/e2eruns/shop-1",
    )
    assert body["data"]["phase"] == "Succeeded"
    expected = hmac.new(KEY.encode(), event.body, hashlib.sha256).hexdigest()
    assert event.headers["X-Helm-E2E-Signature"] == f"sha256={expected}"
    assert "X-Helm-E2E-Signature" not in slack.headers
    assert json.loads(slack.body)["text"].startswith(":white_check_mark: [helm-e2e] shop r1")
    assert_stays(lambda: len(receiver.deliveries) == 2, seconds=4, what="no second delivery")
    run = cluster.get_json("e2erun", "-n", namespace, "shop-1")
    mail = channels(cluster, namespace, "shop-1", mail=True)["@mail"]  # the e-mail: a channel beside them
    email = next(c for c in run["status"]["conditions"] if c["type"] == "EmailSent")
    assert (mail["type"], mail.get("reason") or mail["state"]) == ("email", email["reason"])
    assert "T0KEN" not in op.logs()
    assert KEY not in op.logs()


def test_a_receiver_that_is_down_then_fails_then_is_up_gets_exactly_one_delivery(
    cluster: Cluster, namespace: str, start_operator: Any, unused_tcp_port: int
) -> None:
    targets_secret(cluster, namespace, unused_tcp_port)
    start_operator(
        webhooks_secret="hooks",
        webhooks_namespace=namespace,
        webhooks="ops",
        webhook_retry_base_seconds="0.5",
    )
    cluster.helm("install", "late", TINY, "-n", namespace)
    down = wait_until(
        lambda: (c := channels(cluster, namespace, "late-1").get("ops")) and c["state"] == "Retrying" and c,
        what="Retrying while nothing listens",
    )
    assert "T0KEN" not in down["message"]

    receiver = Receiver(port=unused_tcp_port, key=KEY.encode(), answers=[(503, b"warming up")])
    receiver.start_in_thread()
    try:
        wait_until(lambda: len(receiver.accepted()) == 1, timeout=60, what="the delivery once it is up")
        sent = wait_until(
            lambda: (c := channels(cluster, namespace, "late-1").get("ops")) and c["state"] == "Sent" and c,
            what="Sent",
        )
        assert sent["attempts"] >= 2  # refused connection(s), then the 503
        assert [d.answered for d in receiver.deliveries] == [503, 200]
        assert receiver.signature_ok(receiver.deliveries[1])
        assert receiver.deliveries[0].body == receiver.deliveries[1].body  # the same event, the same id
        assert_stays(lambda: len(receiver.deliveries) == 2, seconds=4, what="exactly one accepted delivery")
    finally:
        receiver.stop_thread()


def test_a_suite_names_a_target_and_cannot_give_a_url(
    cluster: Cluster, namespace: str, start_operator: Any, receiver: Receiver
) -> None:
    targets_secret(cluster, namespace, receiver.port)
    suite = {
        "apiVersion": "helm-e2e.dev/v1alpha1",
        "kind": "E2ESuite",
        "metadata": {"name": "notify", "namespace": namespace},
        "spec": {"report": {"webhooks": ["chat"]}},
    }
    cluster.apply(json.dumps(suite), namespace)
    bad = {**suite, "metadata": {"name": "bad", "namespace": namespace}}
    bad["spec"] = {"report": {"webhooks": ["http://evil.example/x"]}}
    refused = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(bad), check=False)
    assert refused.returncode != 0  # the CRD's pattern: a name, never a URL
    start_operator(webhooks_secret="hooks", webhooks_namespace=namespace)
    cluster.helm("install", "pick", TINY, "-n", namespace)
    wait_until(lambda: len(receiver.accepted()) == 1, what="the suite's webhook")
    assert cluster.get_json("e2erun", "-n", namespace, "pick-1")["spec"]["report"]["webhooks"] == ["chat"]
    assert receiver.deliveries[0].path == "/slack/T0KEN"
