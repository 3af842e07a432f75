"""What a pass sees (reconcile/observe.py) over the fake Kube port and a fake planner: the run's pods and
Jobs by test, and the answers to the decision's Fetch actions — none asked, none fetched."""

from __future__ import annotations

from typing import Any

from fake_kube import NOW, FakeKube
from helm_encoding import helm_release_doc, helm_secret
from runs import report_run as build_run

from helm_e2e.core.lifecycle import actions as act
from helm_e2e.core.model import names
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import TestResult
from helm_e2e.core.plan.readiness import ObjectKey
from helm_e2e.core.results.run_tests import TestObjects
from helm_e2e.reconcile.observe import Observer

DEPLOYMENT = ObjectKey("Deployment", "apps/v1", "prod", "web")


class FakePlanner:
    """The planner calls the observer makes; each call recorded."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def replan(self, run: Run, tests: tuple[str, ...]) -> act.Replanned:
        self.calls.append("replan")
        return act.Replanned(tests={t: "not planned" for t in tests}, rollout=(DEPLOYMENT,))

    async def flux_tests(self, run: Run) -> dict[str, TestResult]:
        self.calls.append("flux")
        return {}


def observer(kube: FakeKube, planner: FakePlanner | None = None) -> Observer:
    return Observer(kube=kube, planner=planner or FakePlanner(), artifacts=None, log_tail_bytes=1000)  # type: ignore[arg-type]


async def add_pod(kube: FakeKube, name: str, test: str, **labels: str) -> None:
    meta = {
        "name": name,
        "namespace": "prod",
        "labels": {names.RUN_LABEL: "webhooks-12", names.TEST_LABEL: test},
    }
    meta["labels"].update(labels)
    await kube.create_pod({"metadata": meta, "spec": {"containers": [{"name": "t"}]}})


async def test_the_runs_pods_are_seen_by_test_and_jobs_only_when_it_has_job_tests(kube: FakeKube) -> None:
    await add_pod(kube, "webhooks-12-api", "api")
    await add_pod(kube, "migrate-x", "load", **{names.JOB_NAME_LABEL: "migrate"})
    objects = await observer(kube).objects(build_run())
    assert list(objects.pods) == ["api"]
    assert [p["metadata"]["name"] for p in objects.job_pods["load"]] == ["migrate-x"]
    assert objects.jobs == {}


async def test_a_decision_that_asks_for_nothing_gets_no_new_observation(kube: FakeKube) -> None:
    planner = FakePlanner()
    seen = act.Observed(now=NOW, objects=TestObjects())
    assert await observer(kube, planner).answer(build_run(), seen, [act.Requeue(1.0)]) is None
    assert planner.calls == []


async def test_the_rollout_is_checked_on_the_plan_fetched_just_before(kube: FakeKube) -> None:
    seen = act.Observed(now=NOW, objects=TestObjects())
    answered = await observer(kube).answer(build_run(), seen, [act.FetchPlan(("api",)), act.FetchRollout()])
    assert answered is not None
    assert answered.plan is not None
    assert answered.plan.tests == {"api": "not planned"}
    assert kube.rollout_checks == [[DEPLOYMENT]]
    assert answered.rollout == act.Rollout(ready=True)
    assert answered.logs == {}  # answered: an observation without logs is one that needs none


async def test_log_tails_are_read_from_each_tests_pod(kube: FakeKube) -> None:
    await add_pod(kube, "webhooks-12-api", "api")
    kube.logs["webhooks-12-api"] = "collected 1 item\nFAILED"
    run = build_run()
    seen = act.Observed(now=NOW, objects=await observer(kube).objects(run))
    answered = await observer(kube).answer(run, seen, [act.FetchLogs(("api",))])
    assert answered is not None
    assert answered.logs == {"api": "collected 1 item\nFAILED"}


async def test_the_history_has_the_releases_revisions_only_when_asked(kube: FakeKube) -> None:
    for revision in (1, 2):
        secret: dict[str, Any] = helm_secret(helm_release_doc(name="webhooks", revision=revision))
        secret["metadata"]["namespace"] = "prod"
        kube.secrets[("prod", secret["metadata"]["name"])] = secret
    run = build_run()
    full = await observer(kube).history(run, act.FetchReleaseHistory())
    assert (set(full.revisions), full.rolled_back_to) == ({1, 2}, {})
    runs_only = await observer(kube).history(run, act.FetchReleaseHistory(revisions=False))
    assert (set(runs_only.revisions), runs_only.deployed) == (set(), None)
