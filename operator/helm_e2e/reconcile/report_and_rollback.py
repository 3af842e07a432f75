"""After a run is final: the rollback (the report goes out through the outbox, reconcile/deliver.py).

One attempt whose outcome is recorded at once with a status write that cannot conflict (no precondition):
a conflict after a `helm rollback` must never lead to a second one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from helm_e2e.artifacts.service import Artifacts
from helm_e2e.clients import metrics
from helm_e2e.clients.helm import HelmPort
from helm_e2e.clients.kube import ObjectRef
from helm_e2e.clients.kube_port import KubePort
from helm_e2e.core.lifecycle import decide, reruns
from helm_e2e.core.model import names
from helm_e2e.core.model.run_codec import status_body
from helm_e2e.core.model.schema import RollbackRecord, Run
from helm_e2e.core.outcomes import rollback as rollbacks
from helm_e2e.settings import Settings

log = structlog.get_logger(__name__)


def run_ref(run: Run) -> ObjectRef:
    return ObjectRef(names.RUN_KIND, names.API_VERSION, run.namespace, run.name, run.uid)


class Outcomes:
    def __init__(
        self,
        *,
        settings: Settings,
        kube: KubePort,
        helm: HelmPort,
        artifacts: Artifacts | None,
        policy: decide.Policy,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings, self.kube, self.helm, self.artifacts = settings, kube, helm, artifacts
        self.policy, self.now = policy, clock

    async def rollback(self, run: Run, action: decide.Rollback) -> float:
        """Run helm once (the intent is already recorded), then record the outcome at once with a write that
        cannot conflict: a status conflict after the call must never lead to a second call."""
        ref = run.spec.release
        record = action.status.rollback or RollbackRecord(target=action.target, attempts=1)
        log.info("rollback.started", run=run.name, namespace=run.namespace, target=action.target)
        result = await self.helm.rollback(release=ref.name, namespace=ref.namespace, revision=action.target)
        created = None
        if result.ok:  # the revision helm wrote: the deployed one now, newer than the failing one
            labels = await self.kube.release_secret_labels(ref.namespace, ref.name)
            deployed = reruns.deployed_revision(labels)
            created = deployed if deployed and deployed > ref.revision else None
        outcome = rollbacks.record_rollback_outcome(
            action.status, record, now=self.now(), error=result.error, revision=created
        )
        await self.kube.patch_run_status(run.namespace, run.name, status_body(outcome.status))
        await self.kube.post_event(
            run_ref(run), type=outcome.event[0], reason=names.EVENT_ROLLED_BACK, message=outcome.event[1]
        )
        metrics.ROLLBACKS.labels(result=outcome.result).inc()
        log_call = log.info if result.ok else log.warning
        log_call(
            "rollback.done", run=run.name, namespace=run.namespace, target=action.target, error=result.error
        )
        return 0.0
