"""The one writer of an E2ERun's status, and of the Events on it: every path of the executor goes through it.

A write made on the pass's read carries its resourceVersion (a conflict: decide again on a fresh read); the
outcome of a side effect (a `helm rollback`) is written without one, so a conflict after the effect can
never lead to a second. Whatever a write completes is logged and counted here, once, after it is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from helm_e2e.clients import metrics
from helm_e2e.clients.kube import ObjectRef, Patched
from helm_e2e.clients.kube_port import KubePort
from helm_e2e.core.lifecycle.actions import PatchStatus, PostEvent
from helm_e2e.core.model import names
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_codec import status_body
from helm_e2e.core.model.run_status import RunStatus, TestPhase

log = structlog.get_logger(__name__)


def run_ref(run: Run) -> ObjectRef:
    return ObjectRef(names.RUN_KIND, names.API_VERSION, run.namespace, run.name, run.uid)


def read_version(body: Mapping[str, Any]) -> str | None:
    """The resourceVersion a pass read the run at: its status write's precondition."""
    version = (body.get("metadata") or {}).get("resourceVersion")
    return str(version) if version else None


class StatusWriter:
    def __init__(self, kube: KubePort) -> None:
        self.kube = kube

    async def write(self, run: Run, patch: PatchStatus, *, resource_version: str | None) -> Patched:
        """Write `patch.status` (`resource_version` None: unconditionally); once stored, log the tests'
        transitions and count what the write completed (a run's end, a mail or rollback outcome)."""
        patched = await self.kube.patch_run_status(
            run.namespace, run.name, status_body(patch.status), resource_version=resource_version
        )
        if patched != Patched.APPLIED:
            log.debug("status.not_written", run=run.name, namespace=run.namespace, why=patched.value)
            return patched
        _log_transitions(run, patch.status)
        if patch.mail_outcome:
            metrics.EMAILS.labels(result=patch.mail_outcome).inc()
        if patch.rollback_outcome:
            metrics.ROLLBACKS.labels(result=patch.rollback_outcome).inc()
        return patched

    async def post_event(self, ref: ObjectRef, event: PostEvent) -> None:
        await self.kube.post_event(ref, type=event.type, reason=event.reason, message=event.message)

    async def refuse_unreadable(
        self, key: tuple[str, str], uid: str, patch: PatchStatus, event: PostEvent
    ) -> None:
        """A run body that does not parse (no `Run` to log against): its Refused status, then the Event."""
        await self.kube.patch_run_status(*key, status_body(patch.status))
        await self.post_event(ObjectRef(names.RUN_KIND, names.API_VERSION, key[0], key[1], uid), event)


def _log_transitions(run: Run, new: RunStatus) -> None:
    before = {t.name: t.phase for t in run.status.tests}
    for test in new.tests:
        if before.get(test.name, TestPhase.PENDING) != test.phase:
            log.info(
                "test.phase",
                run=run.name,
                namespace=run.namespace,
                test=test.name,
                phase=test.phase.value,
                exit_code=test.exit_code,
                reason=test.reason or None,
            )
    if new.phase.is_final and not run.status.phase.is_final:
        _count_completed(run, new)


def _count_completed(run: Run, new: RunStatus) -> None:
    metrics.RUNS.labels(phase=new.phase.value).inc()
    if new.started_at and new.completed_at:
        metrics.RUN_DURATION.observe((new.completed_at - new.started_at).total_seconds())
    for test in new.tests:
        metrics.TESTS.labels(phase=test.phase.value).inc()
    log.info(
        "run.completed",
        run=run.name,
        namespace=run.namespace,
        phase=new.phase.value,
        passed=new.summary.passed,
        failed=new.summary.failed,
    )
