"""reconcile/planning.py: the Planner's sandbox calls (one per revision), its reads, and the plans it keeps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fake_kube import Clock, FakeKube
from helm_encoding import helm_release_doc, helm_secret

from helm_e2e import errors
from helm_e2e.core.model import names
from helm_e2e.core.model.release import OnFailure
from helm_e2e.core.model.run import ReadinessMode, Run
from helm_e2e.core.model.run_codec import build_run_body, run_from_body
from helm_e2e.core.plan.build import Plan
from helm_e2e.core.plan.run_spec import build_run_spec
from helm_e2e.core.sources import argocd
from helm_e2e.reconcile import planning
from helm_e2e.reconcile.planning import Planner
from helm_e2e.settings import Settings

NS = "shop"
DEPLOYED = "2026-11-25T08:00:00Z"
SMOKE = {
    "name": "smoke",
    "kind": "Pod",
    "path": "web/templates/smoke.yaml",
    "events": ["test"],
    "manifest": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: smoke\n"
    "spec:\n  containers:\n  - name: t\n    image: busybox\n",
}


class CountingSandbox:
    """The sandbox's one entry point, run in this process; each call (a worker's job) is counted."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def run_bounded(self, fn: Callable[..., Any], *args: Any, time_limit: float, **kwargs: Any) -> Any:
        assert time_limit == 10  # the settings' bound reaches every call
        self.calls.append(getattr(fn, "__name__", ""))
        return fn(*args, **kwargs)


def secret(revision: int = 1) -> dict[str, Any]:
    body = helm_secret(
        helm_release_doc(revision=revision, hooks=[SMOKE]), name=f"sh.helm.release.v1.web.v{revision}"
    )
    body["metadata"].update(uid=f"uid-{revision}", resourceVersion="7")
    return body


def suite(name: str = "api") -> dict[str, Any]:
    test = {"name": name, "template": {"containers": [{"name": "t", "image": "busybox"}]}}
    return {"metadata": {"name": name, "namespace": NS, "generation": 1}, "spec": {"tests": [test]}}


def make_planner(kube: FakeKube, clock: Clock, sandbox: CountingSandbox | None = None) -> Planner:
    settings = Settings(smtp_host="", sandbox_timeout_seconds=10)
    return Planner(settings=settings, kube=kube, clock=clock, sandbox=sandbox)  # type: ignore[arg-type]


async def run_of(planner: Planner, body: dict[str, Any]) -> Run:
    planned = await planner.plan(body)
    spec = build_run_spec(
        planned.release, planned.plan, deadline_seconds=600, secret_uid=body["metadata"]["uid"]
    )
    return run_from_body(
        {**build_run_body(spec, name="web-1", namespace=NS), "metadata": {"name": "web-1", "namespace": NS}}
    )


async def test_a_revision_is_decoded_and_planned_in_one_sandbox_call_and_never_decoded_again(
    kube: FakeKube, clock: Clock
) -> None:
    box = CountingSandbox()
    planner = make_planner(kube, clock, box)
    planned = await planner.plan(secret())
    assert box.calls == ["_decode_and_plan_in_worker"]
    assert planned.release.values == {}  # the operator process never holds them
    assert [t.name for t in planned.plan.tests] == ["smoke"]
    assert await planner.decode(secret()) == planned.release  # that very Secret content: kept
    assert box.calls == ["_decode_and_plan_in_worker"]


async def test_a_secret_rewritten_since_it_was_planned_is_decoded_again(kube: FakeKube, clock: Clock) -> None:
    box = CountingSandbox()
    planner = make_planner(kube, clock, box)
    await planner.plan(secret())
    rewritten = secret()
    rewritten["metadata"]["resourceVersion"] = "8"  # Helm relabelled it: the blob may differ too
    await planner.decode(rewritten)
    without_version = secret()
    del without_version["metadata"]["resourceVersion"]
    await planner.decode(without_version)
    assert box.calls == ["_decode_and_plan_in_worker", "decode_release", "decode_release"]


async def test_the_decoded_releases_kept_are_bounded(
    kube: FakeKube, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planning, "MAX_KEPT_RELEASES", 2)
    box = CountingSandbox()
    planner = make_planner(kube, clock, box)
    for revision in (1, 2, 3):
        await planner.plan(secret(revision))
    box.calls.clear()
    await planner.decode(secret(3))
    await planner.decode(secret(1))  # the oldest went first
    assert box.calls == ["decode_release"]


async def test_a_plan_reads_the_namespaces_suites_and_test_accounts(kube: FakeKube, clock: Clock) -> None:
    kube.suites[NS] = [suite("api")]
    kube.accounts[NS] = frozenset({"tester"})
    planner = make_planner(kube, clock)
    context = await planner.context(NS)
    assert [s.name for s in context.suites] == ["api"]
    assert context.accounts == frozenset({"tester"})
    planned = await planner.plan(secret())
    assert [t.name for t in planned.plan.tests] == ["smoke", "api"]
    assert planned.plan.used_suites == ["api"]


async def test_a_kept_plan_is_what_replan_answers_until_it_is_forgotten(kube: FakeKube, clock: Clock) -> None:
    box = CountingSandbox()
    planner = make_planner(kube, clock, box)
    kube.secrets[(NS, "sh.helm.release.v1.web.v1")] = secret()
    run = await run_of(planner, secret())
    kept = Plan(image_tag="kept", tests=[])
    planner.keep((NS, "web-1"), kept)
    box.calls.clear()
    replanned = await planner.replan(run, ["smoke"])
    assert replanned.tests == {"smoke": planning.NOT_IN_PLAN}  # the kept plan, not a new one
    assert box.calls == []
    planner.forget((NS, "web-1"))
    assert planner.kept((NS, "web-1")) is None
    replanned = await planner.replan(run, ["smoke", "gone"])
    assert box.calls == ["_decode_and_plan_in_worker"]  # after a restart: once, then kept again
    assert replanned.tests["smoke"].name == "smoke"  # type: ignore[union-attr]
    assert replanned.tests["gone"] == planning.NOT_IN_PLAN
    await planner.replan(run, ["smoke"])
    assert box.calls == ["_decode_and_plan_in_worker"]


async def test_kept_plans_are_bounded_oldest_first(
    kube: FakeKube, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planning, "MAX_KEPT_PLANS", 2)
    planner = make_planner(kube, clock)
    for name in ("a", "b", "c"):
        planner.keep((NS, name), Plan(image_tag=name))
    assert [planner.kept((NS, n)) is not None for n in ("a", "b", "c")] == [False, True, True]


async def test_a_run_whose_release_secret_is_gone_cannot_be_planned_again(
    kube: FakeKube, clock: Clock
) -> None:
    planner = make_planner(kube, clock)
    run = await run_of(planner, secret())
    assert (await planner.replan(run, ["smoke"])).tests == {"smoke": planning.RELEASE_GONE}


async def test_a_release_secret_that_is_not_the_runs_refuses_the_run(kube: FakeKube, clock: Clock) -> None:
    planner = make_planner(kube, clock)
    run = await run_of(planner, secret())
    other = secret()
    other["metadata"]["uid"] = "uid-of-another"
    kube.secrets[(NS, "sh.helm.release.v1.web.v1")] = other
    with pytest.raises(errors.RunRefused):
        await planner.replan(run, ["smoke"])


async def test_a_replan_that_runs_out_of_the_sandbox_says_so_per_test(kube: FakeKube, clock: Clock) -> None:
    planner = make_planner(kube, clock)
    run = await run_of(planner, secret())
    kube.secrets[(NS, "sh.helm.release.v1.web.v1")] = secret()

    async def too_slow(body: Any, *, context: Any = None) -> Any:
        raise errors.SandboxTimeout("sandboxed work ran longer than 10s; worker killed")

    planner.plan = too_slow  # type: ignore[method-assign]
    replanned = await planner.replan(run, ["smoke"])
    assert (
        replanned.tests["smoke"]
        == "the release could not be planned again: sandboxed work ran longer than 10s; worker killed"
    )


async def test_an_application_plan_has_no_gate_and_never_rolls_back(kube: FakeKube, clock: Clock) -> None:
    kube.suites[NS] = [suite("api")]
    box = CountingSandbox()
    planner = make_planner(kube, clock, box)
    app = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "web", "namespace": "argocd", "uid": "app-uid", "labels": {}},
        "spec": {
            "source": {"repoURL": "https://git.example.com/shop.git", "path": "charts/web"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": NS},
        },
        "status": {
            "sync": {"status": "Synced", "revision": "abc"},
            "health": {"status": "Healthy"},
            "history": [{"id": 3, "revision": "abc", "deployedAt": DEPLOYED, "deployStartedAt": DEPLOYED}],
            "operationState": {
                "phase": "Succeeded",
                "finishedAt": DEPLOYED,
                "syncResult": {"revision": "abc"},
            },
        },
    }
    sync = argocd.latest_sync(app)
    assert sync is not None
    spec_suite = suite("api")
    spec_suite["spec"]["applications"] = {"names": ["web"]}
    kube.suites[NS] = [spec_suite]
    plan = await planner.plan_application(argocd.build_release(app, sync), await planner.context(NS))
    assert plan.on_failure == OnFailure.NONE
    assert plan.readiness.mode == ReadinessMode.NONE
    assert plan.used_suites == ["api"]
    assert box.calls == ["_plan_in_worker"]


async def test_flux_tests_are_left_to_the_helmrelease_that_names_the_release(
    kube: FakeKube, clock: Clock
) -> None:
    planner = make_planner(kube, clock)
    planned = await planner.plan(secret())
    assert await planner.with_flux(planned.release, planned.plan) is planned.plan  # not Flux's: no GET
    assert names.TEST_SOURCE_FLUX not in {t.source for t in planned.plan.tests}
