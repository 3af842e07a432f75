"""What a run creates (core/lifecycle/creation.py): the collector sidecar is the core's decision, given the
token the shell minted; without a token (or a collector) the body is created as planned."""

from __future__ import annotations

from typing import Any

from helm_e2e.core.artifacts.rules import CollectorSpec
from helm_e2e.core.lifecycle.actions import CreateTest
from helm_e2e.core.lifecycle.creation import body_to_create, collector_unavailable
from helm_e2e.core.model import names

SPEC = CollectorSpec(
    image="ghcr.io/helm-e2e/helm-e2e:0.1.0",
    directory="/artifacts",
    upload_url="http://helm-e2e.ops.svc:8081/v1/uploads",
    token="",
    max_bytes=1000,
)


def pod() -> dict[str, Any]:
    return {"kind": "Pod", "metadata": {"name": "web-1-api"}, "spec": {"containers": [{"name": "t"}]}}


def env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


def test_the_collector_is_added_with_the_minted_token_and_the_policys_url() -> None:
    action = CreateTest("api", "Pod", pod(), SPEC)
    body = body_to_create(action, "signed-token")
    collector = body["spec"]["initContainers"][0]
    assert collector["name"] == names.COLLECTOR_CONTAINER
    assert env(collector)[names.UPLOAD_TOKEN_ENV] == "signed-token"
    assert env(collector)[names.UPLOAD_URL_ENV] == "http://helm-e2e.ops.svc:8081/v1/uploads"
    assert env(body["spec"]["containers"][0])[names.ARTIFACTS_DIR_ENV] == "/artifacts"
    assert action.body == pod()  # the decided body is left as it was


def test_without_a_token_or_a_collector_the_body_is_created_as_planned() -> None:
    assert body_to_create(CreateTest("api", "Pod", pod(), SPEC), None) == pod()
    assert body_to_create(CreateTest("api", "Pod", pod()), "signed-token") == pod()


def test_a_test_without_its_collector_says_why_in_its_message_and_the_event() -> None:
    why, message = collector_unavailable("api", "Unavailable")
    assert why == "artifacts not collected: the artifact store cannot be written (Unavailable)"
    assert message == f"api: {why}"
