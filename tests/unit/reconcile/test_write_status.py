"""The one status writer (reconcile/write_status.py) over the fake Kube port: a write on a stale read is not
stored and counts nothing; a stored write logs and counts what it completed, once."""

from __future__ import annotations

from fake_kube import FakeKube
from prometheus_client import REGISTRY
from runs import report_run as build_run

from helm_e2e.clients.kube import Patched
from helm_e2e.core.lifecycle.actions import PatchStatus, PostEvent
from helm_e2e.core.model import names
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_codec import build_run_body, run_from_body, status_body
from helm_e2e.core.model.run_status import RunPhase, RunStatus
from helm_e2e.reconcile.write_status import StatusWriter, read_version, run_ref


async def stored(kube: FakeKube, run: Run) -> tuple[Run, str | None]:
    body = await kube.create_run(build_run_body(run.spec, name=run.name, namespace=run.namespace))
    assert body is not None
    await kube.patch_run_status(run.namespace, run.name, status_body(run.status))
    fresh = await kube.get_run(run.namespace, run.name)
    assert fresh is not None
    return run_from_body(fresh), read_version(fresh)


def rollbacks(result: str) -> float:
    return REGISTRY.get_sample_value("helm_e2e_rollbacks_total", {"result": result}) or 0.0


async def test_a_write_on_the_passs_read_is_stored_and_its_outcome_counted_once(kube: FakeKube) -> None:
    run, version = await stored(kube, build_run(RunPhase.FAILED))
    before = rollbacks("CountedOnce")
    patch = PatchStatus(run.status.model_copy(update={"message": "m"}), rollback_outcome="CountedOnce")
    assert await StatusWriter(kube).write(run, patch, resource_version=version) == Patched.APPLIED
    assert kube.runs[(run.namespace, run.name)]["status"]["message"] == "m"
    assert rollbacks("CountedOnce") == before + 1


async def test_a_stale_write_is_not_stored_and_counts_nothing(kube: FakeKube) -> None:
    run, version = await stored(kube, build_run(RunPhase.FAILED))
    before, patches = rollbacks("NotCounted"), len(kube.status_patches)
    kube.conflict_next_patch = True
    patch = PatchStatus(run.status, rollback_outcome="NotCounted")
    assert await StatusWriter(kube).write(run, patch, resource_version=version) == Patched.CONFLICT
    assert len(kube.status_patches) == patches
    assert rollbacks("NotCounted") == before


async def test_a_write_without_a_precondition_is_stored_over_a_newer_one(kube: FakeKube) -> None:
    run, _ = await stored(kube, build_run(RunPhase.FAILED))
    kube.conflict_next_patch = True  # only a precondition can conflict
    patch = PatchStatus(run.status.model_copy(update={"message": "outcome"}))
    assert await StatusWriter(kube).write(run, patch, resource_version=None) == Patched.APPLIED


async def test_a_run_that_becomes_final_is_counted_by_phase(kube: FakeKube) -> None:
    run, version = await stored(kube, build_run(RunPhase.FAILED))
    active = run.model_copy(update={"status": RunStatus(phase=RunPhase.RUNNING)})
    before = REGISTRY.get_sample_value("helm_e2e_runs_total", {"phase": "Failed"}) or 0.0
    await StatusWriter(kube).write(active, PatchStatus(run.status), resource_version=version)
    assert REGISTRY.get_sample_value("helm_e2e_runs_total", {"phase": "Failed"}) == before + 1


async def test_events_and_the_refusal_of_an_unreadable_run_go_through_the_writer(kube: FakeKube) -> None:
    run, _ = await stored(kube, build_run(RunPhase.FAILED))
    writer = StatusWriter(kube)
    await writer.post_event(run_ref(run), PostEvent("Normal", "Why", "because"))
    refused = PatchStatus(RunStatus(phase=RunPhase.REFUSED, message="not ours"))
    event = PostEvent("Warning", names.REASON_REFUSED, "not ours")
    await writer.refuse_unreadable((run.namespace, run.name), "uid-x", refused, event)
    assert kube.events == [
        (run.name, "Normal", "Why", "because"),
        (run.name, "Warning", names.REASON_REFUSED, "not ours"),
    ]
    assert kube.runs[(run.namespace, run.name)]["status"]["phase"] == "Refused"
