"""Runs the `helm rollback` the decision asked for, once (its intent is already recorded), and records the
outcome at once through the status writer, without a precondition: a status conflict after the call must
never lead to a second call. The outcome is counted by the writer, once."""

from __future__ import annotations

from datetime import datetime

import structlog

from helm_e2e.clients.helm import HelmPort
from helm_e2e.clients.kube_port import KubePort
from helm_e2e.core.lifecycle import actions as act
from helm_e2e.core.lifecycle import reruns
from helm_e2e.core.model import names
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import RollbackRecord
from helm_e2e.core.outcomes import rollback as rollbacks
from helm_e2e.reconcile.write_status import StatusWriter, run_ref

log = structlog.get_logger(__name__)
AFTER_ROLLBACK = 0.0  # seconds: the report, which says what happened, goes out on a fresh read


async def roll_back(
    run: Run, action: act.Rollback, *, helm: HelmPort, kube: KubePort, status: StatusWriter, now: datetime
) -> float:
    ref = run.spec.release
    record = action.status.rollback or RollbackRecord(target=action.target, attempts=1)
    log.info("rollback.started", run=run.name, namespace=run.namespace, target=action.target)
    result = await helm.rollback(release=ref.name, namespace=ref.namespace, revision=action.target)
    created = None
    if result.ok:  # the revision helm wrote
        labels = await kube.release_secret_labels(ref.namespace, ref.name)
        created = rollbacks.created_revision(reruns.deployed_revision(labels), ref.revision)
    outcome = rollbacks.record_rollback_outcome(
        action.status, record, now=now, error=result.error, revision=created
    )
    patch = act.PatchStatus(outcome.status, rollback_outcome=outcome.result)
    await status.write(run, patch, resource_version=None)
    event_type, message = outcome.event
    await status.post_event(run_ref(run), act.PostEvent(event_type, names.EVENT_ROLLED_BACK, message))
    log_call = log.info if result.ok else log.warning
    log_call("rollback.done", run=run.name, namespace=run.namespace, target=action.target, error=result.error)
    return AFTER_ROLLBACK
