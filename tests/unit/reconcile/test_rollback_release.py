"""`helm rollback` as the decision asked (reconcile/rollback_release.py), with a fake helm and the fake Kube
port: called once, its outcome and the revision it created recorded without a precondition, one Event,
and the outcome counted once."""

from __future__ import annotations

from fake_helm import FakeHelm
from fake_kube import NOW, FakeKube
from helm_encoding import helm_release_doc, helm_secret
from prometheus_client import REGISTRY
from runs import report_run as build_run

from helm_e2e.core.lifecycle.actions import Rollback
from helm_e2e.core.model import names
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_codec import build_run_body, run_from_body, status_body
from helm_e2e.core.model.run_status import RollbackRecord, RunPhase
from helm_e2e.reconcile.rollback_release import roll_back
from helm_e2e.reconcile.write_status import StatusWriter


async def failing_revision_3(kube: FakeKube) -> Run:
    for revision in (1, 2, 3):
        secret = helm_secret(helm_release_doc(revision=revision))
        secret["metadata"]["labels"]["status"] = "deployed" if revision == 3 else "superseded"
        kube.secrets[("shop", secret["metadata"]["name"])] = secret
    run = build_run(RunPhase.FAILED)
    run.spec.release.name, run.spec.release.namespace, run.spec.release.revision = "web", "shop", 3
    await kube.create_run(build_run_body(run.spec, name="web-3", namespace="shop"))
    await kube.patch_run_status("shop", "web-3", status_body(run.status))
    return run_from_body(kube.runs[("shop", "web-3")])


def counted(result: str) -> float:
    return REGISTRY.get_sample_value("helm_e2e_rollbacks_total", {"result": result}) or 0.0


def intent(run: Run) -> Rollback:
    status = run.status.model_copy(update={"rollback": RollbackRecord(target=2, attempts=1)})
    return Rollback(2, status)


async def test_a_rollback_records_the_revision_helm_created_with_one_event_counted_once(
    kube: FakeKube,
) -> None:
    run, helm = await failing_revision_3(kube), FakeHelm(kube)
    before = counted(names.REASON_ROLLED_BACK)
    kube.conflict_next_patch = True  # someone wrote the run meanwhile: the outcome is stored all the same
    again = await roll_back(run, intent(run), helm=helm, kube=kube, status=StatusWriter(kube), now=NOW)
    assert again == 0.0
    assert helm.calls == [("shop", "web", 2)]
    stored = kube.runs[("shop", "web-3")]["status"]
    assert stored["rollback"]["revision"] == 4  # the revision helm wrote
    assert [(e[1], e[2]) for e in kube.events] == [("Normal", names.EVENT_ROLLED_BACK)]
    assert kube.events[0][3] == "rolled back to revision 2 (revision 4)"
    assert counted(names.REASON_ROLLED_BACK) == before + 1


async def test_a_failed_rollback_records_helms_error_as_a_warning(kube: FakeKube) -> None:
    run, helm = await failing_revision_3(kube), FakeHelm(kube)
    helm.error = "Error: release has no 2 version"
    before = counted(names.REASON_ROLLBACK_FAILED)
    await roll_back(run, intent(run), helm=helm, kube=kube, status=StatusWriter(kube), now=NOW)
    (event,) = kube.events
    assert event[1:3] == ("Warning", names.EVENT_ROLLED_BACK)
    assert "release has no 2 version" in event[3]
    assert "revision" not in kube.runs[("shop", "web-3")]["status"]["rollback"]
    assert counted(names.REASON_ROLLBACK_FAILED) == before + 1
