"""Creating what the decision asked (reconcile/create_tests.py) over the fake Kube port: the collector goes in
with the token minted here, a store that cannot mint leaves the test without it (said in an Event), and
what the API refuses comes back by test."""

from __future__ import annotations

from typing import Any

from fake_kube import Clock, FakeKube
from runs import report_run as build_run

from helm_e2e.core.artifacts.rules import CollectorSpec
from helm_e2e.core.lifecycle.actions import CreateHookObjects, CreateTest
from helm_e2e.core.model import names
from helm_e2e.core.model.run import Run
from helm_e2e.errors import StoreError
from helm_e2e.reconcile.create_tests import TestCreator
from helm_e2e.reconcile.write_status import StatusWriter

SPEC = CollectorSpec(image="img", directory="/artifacts", upload_url="http://up", token="", max_bytes=10)


class FakeArtifacts:
    """The two calls the creator makes of the artifacts service."""

    def __init__(self, error: StoreError | None = None) -> None:
        self.error, self.minted, self.noted = error, list[str](), dict[str, str]()

    async def upload_token(self, run: Run, test: str, *, now: Any) -> str:
        if self.error is not None:
            raise self.error
        self.minted.append(test)
        return f"token-{test}"

    def not_collected(self, run: Run, test: str, why: str) -> None:
        self.noted[test] = why


def pod(name: str) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "prod", "labels": {}},
        "spec": {"containers": []},
    }


def creator(kube: FakeKube, artifacts: FakeArtifacts | None) -> TestCreator:
    return TestCreator(kube=kube, artifacts=artifacts, status=StatusWriter(kube), clock=Clock())  # type: ignore[arg-type]


def collector_token(kube: FakeKube, name: str) -> str | None:
    containers = kube.pods[("prod", name)]["spec"].get("initContainers", [])
    env = [e for c in containers if c["name"] == names.COLLECTOR_CONTAINER for e in c["env"]]
    return next((e["value"] for e in env if e["name"] == names.UPLOAD_TOKEN_ENV), None)


async def test_a_test_gets_its_collector_with_a_token_minted_for_it(kube: FakeKube) -> None:
    artifacts = FakeArtifacts()
    refused = await creator(kube, artifacts).create(
        build_run(), [CreateTest("api", "Pod", pod("p-api"), SPEC)]
    )
    assert refused == {}
    assert artifacts.minted == ["api"]
    assert collector_token(kube, "p-api") == "token-api"


async def test_no_collector_when_the_decision_wants_none_or_there_is_no_artifacts_service(
    kube: FakeKube,
) -> None:
    artifacts = FakeArtifacts()
    await creator(kube, artifacts).create(build_run(), [CreateTest("a", "Pod", pod("p-a"))])
    await creator(kube, None).create(build_run(), [CreateTest("b", "Pod", pod("p-b"), SPEC)])
    assert artifacts.minted == []
    assert collector_token(kube, "p-a") is None
    assert collector_token(kube, "p-b") is None


async def test_a_store_that_cannot_mint_leaves_the_test_without_a_collector_and_says_so(
    kube: FakeKube,
) -> None:
    artifacts = FakeArtifacts(StoreError("no key", reason="NoKey"))
    run = build_run()
    await creator(kube, artifacts).create(run, [CreateTest("api", "Pod", pod("p-api"), SPEC)])
    assert ("prod", "p-api") in kube.pods
    assert collector_token(kube, "p-api") is None
    why = "artifacts not collected: the artifact store cannot be written (NoKey)"
    assert artifacts.noted == {"api": why}
    assert kube.events == [(run.name, "Warning", names.EVENT_ARTIFACTS_UNAVAILABLE, f"api: {why}")]


async def test_what_the_api_refuses_comes_back_by_test_and_the_rest_is_created(kube: FakeKube) -> None:
    kube.refuse["p-a"] = (403, "Forbidden", "quota")
    kube.refuse["hook-sa"] = (422, "Invalid", "bad")
    hooks = CreateHookObjects(({"kind": "ServiceAccount", **pod("hook-sa")},), (True,), ("h",))
    actions = [hooks, CreateTest("a", "Pod", pod("p-a")), CreateTest("b", "Pod", pod("p-b"))]
    refused = await creator(kube, None).create(build_run(), actions)
    assert refused == {"h": ("Invalid", "bad"), "a": ("Forbidden", "quota")}
    assert kube.created_pods == ["p-b"]
