"""Deleting and pruning (reconcile/cleanup.py) over the fake Kube port: exactly what the action names, and
the release's runs beyond the action's limit (from the policy), never the run asking."""

from __future__ import annotations

from fake_kube import FakeKube
from runs import report_run as build_run

from helm_e2e.core.lifecycle.actions import DeleteJobs, DeletePods, PruneHistory
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_codec import build_run_body, run_from_body, runs_from_bodies, status_body
from helm_e2e.core.model.run_status import RunPhase
from helm_e2e.reconcile.cleanup import Cleanup


async def store(kube: FakeKube, revision: int, phase: RunPhase = RunPhase.SUCCEEDED) -> Run:
    run = build_run(phase)
    run.spec.release.revision = revision
    name = f"webhooks-{revision}"
    await kube.create_run(build_run_body(run.spec, name=name, namespace=run.namespace))
    await kube.patch_run_status(run.namespace, name, status_body(run.status))
    return run_from_body(kube.runs[(run.namespace, name)])


async def test_the_release_is_pruned_to_the_actions_limit_listing_its_runs_when_not_given(
    kube: FakeKube,
) -> None:
    runs = [await store(kube, r) for r in (1, 2, 3, 4)]
    await Cleanup(kube=kube, artifacts=None).prune(runs[-1], PruneHistory("webhooks", runs=None, limit=2))
    assert sorted(name for _, name in kube.runs) == ["webhooks-3", "webhooks-4"]


async def test_pruning_uses_the_runs_the_pass_listed_and_keeps_the_asking_run(kube: FakeKube) -> None:
    runs = [await store(kube, r) for r in (1, 2, 3)]
    listed = runs_from_bodies([kube.runs[("prod", "webhooks-1")], kube.runs[("prod", "webhooks-3")]])
    await Cleanup(kube=kube, artifacts=None).prune(runs[0], PruneHistory("webhooks", runs=listed, limit=0))
    assert sorted(name for _, name in kube.runs) == ["webhooks-1", "webhooks-2"]  # 2 was not listed


async def test_pods_and_jobs_named_are_deleted(kube: FakeKube) -> None:
    run = await store(kube, 1)
    meta = {"namespace": "prod", "labels": {}}
    await kube.create_pod({"metadata": {"name": "p", **meta}})
    await kube.create_job({"metadata": {"name": "j", **meta}})
    cleanup = Cleanup(kube=kube, artifacts=None)
    await cleanup.delete(run, DeletePods(("p",)))
    await cleanup.delete(run, DeleteJobs(("j",)))
    assert kube.deleted_pods == ["p", "j"]
    assert not kube.pods
    assert not kube.jobs
