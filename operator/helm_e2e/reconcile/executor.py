"""The executor: one pass over one run — observe (observe.py), ask `core.lifecycle` what to do, and apply
exactly that: create (create_tests.py), write the status and Events (write_status.py), delete and prune
(cleanup.py), roll back (rollback_release.py), report and notify.

It decides nothing itself. Actions are applied in the order decided; a conflicting status patch stops the
pass (the rest is decided again on a fresh read), and the API's refusals to create a pod are fed back into
the same pass as observations, so the run goes on without them. A pass that raises is retried and, at a
bound, ends the run: both decided by `core.lifecycle.end_runs.decide_reconcile_failure`.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import ValidationError

from helm_e2e import errors
from helm_e2e.clients import metrics
from helm_e2e.clients.helm import Helm, HelmPort
from helm_e2e.clients.kube import Patched
from helm_e2e.clients.kube_port import KubePort
from helm_e2e.core.artifacts.rules import CollectorSpec
from helm_e2e.core.lifecycle import actions as act
from helm_e2e.core.lifecycle import decide as lifecycle
from helm_e2e.core.lifecycle import end_runs, trust
from helm_e2e.core.lifecycle.end_runs import MAX_RECONCILE_FAILURES as MAX_RECONCILE_FAILURES
from helm_e2e.core.model import names
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_codec import run_from_body
from helm_e2e.core.model.run_status import RunPhase
from helm_e2e.core.results.run_tests import TestObjects
from helm_e2e.reconcile.cleanup import Cleanup
from helm_e2e.reconcile.create_tests import TestCreator
from helm_e2e.reconcile.deliver import Delivery
from helm_e2e.reconcile.observe import Observer
from helm_e2e.reconcile.planning import Planner
from helm_e2e.reconcile.recent_runs import RecentRuns
from helm_e2e.reconcile.rollback_release import roll_back
from helm_e2e.reconcile.write_status import StatusWriter, read_version, run_ref
from helm_e2e.settings import Settings

if TYPE_CHECKING:  # the artifact stack (obstore, jwt, tarfile) is imported only when artifacts are on
    from helm_e2e.artifacts.service import Artifacts

log = structlog.get_logger(__name__)

RunKey = tuple[str, str]  # (namespace, name)
MAX_END_ATTEMPTS = 5  # an end decided again after a conflicting status write
AFTER_CONFLICT = 0.2  # seconds: a conflicting status write is decided again on a fresh read this soon
MAX_PASSES = 4  # observe → decide → act rounds in one reconcile (fetches and refusals add a round)
UPLOADS_PATH = "/v1/uploads"  # where the artifacts server takes a collector's upload (artifacts/server.py)


def _where(error: BaseException) -> str:
    """file:line where an unexpected error was raised (a place in our code, never a value)."""
    frames = traceback.extract_tb(error.__traceback__)
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""


def _is_create(action: act.Action) -> bool:
    return isinstance(action, act.CreateHookObjects | act.CreateTest)


def build_policy(settings: Settings, *, artifacts: bool = False) -> lifecycle.Policy:
    """The settings a decision depends on; `artifacts`: the service is there (the collector is added)."""
    collector = CollectorSpec(
        image=settings.collector_image,
        directory=settings.artifacts_dir,
        upload_url=settings.artifacts_url.rstrip("/") + UPLOADS_PATH,
        token="",  # minted per test when it is created
        max_bytes=settings.artifacts_max_test_bytes,
    )
    return lifecycle.Policy(
        resync_seconds=settings.resync_seconds,
        pod_ttl_seconds=settings.pod_ttl_seconds,
        mail_to=tuple(settings.mail_to),
        report_cancelled=settings.mail_report_cancelled,
        smtp_enabled=settings.smtp_enabled,
        mail_retry_base_seconds=settings.smtp_retry_base_seconds,
        webhooks=tuple(settings.webhooks),
        webhook_retry_base_seconds=settings.webhook_retry_base_seconds,
        mail_allowed_domains=settings.allowed_mail_domains,
        history_limit=settings.history_limit,
        collector=collector if artifacts else None,
    )


class Executor:
    def __init__(
        self,
        *,
        settings: Settings,
        kube: KubePort,
        planner: Planner,
        clock: Callable[[], datetime],
        helm: HelmPort | None = None,
        artifacts: Artifacts | None = None,
    ) -> None:
        self.settings, self.kube, self.planner, self.now = settings, kube, planner, clock
        self.helm = helm or Helm(
            binary=settings.helm_binary, timeout_seconds=settings.rollback_timeout_seconds
        )
        self.policy = build_policy(settings, artifacts=artifacts is not None)
        self.status = StatusWriter(kube)
        # a final pass's LIST of the release's runs, for its report's history strip: only when reports are
        # mailed (a burst of 5,000 without SMTP held 1,024 lists of runs no report would ever take)
        recent = RecentRuns() if settings.smtp_enabled else None
        self.observer = Observer(
            kube=kube,
            planner=planner,
            artifacts=artifacts,
            log_tail_bytes=settings.log_tail_bytes,
            recent=recent,
        )
        self.creator = TestCreator(kube=kube, artifacts=artifacts, status=self.status, clock=clock)
        self.cleanup = Cleanup(kube=kube, artifacts=artifacts)
        self.delivery = Delivery(
            settings=settings,
            kube=kube,
            artifacts=artifacts,
            policy=self.policy,
            clock=clock,
            recent=recent,
            status=self.status,
        )
        self._failures: dict[RunKey, int] = {}

    async def end(
        self, run: Run, body: Mapping[str, Any], phase: RunPhase, reason: str, message: str
    ) -> None:
        """Supersede, cancel or fail an active run (its pods go on the run's next pass). The run's own
        reconcile may write its status meanwhile: a conflicting write is decided again on a fresh read, so
        the end is never lost (a lost supersede let the old run finish as Succeeded)."""
        for _ in range(MAX_END_ATTEMPTS):
            actions = end_runs.decide_end(run, phase=phase, reason=reason, message=message, now=self.now())
            if not actions:
                return  # already final
            observed = lifecycle.Observed(now=self.now(), objects=TestObjects())
            if await self._apply(run, body, actions, observed) != AFTER_CONFLICT:
                log.info("run.ended", run=run.name, namespace=run.namespace, phase=phase.value, reason=reason)
                return
            fresh = await self.kube.get_run(run.namespace, run.name)
            if fresh is None:
                return
            body, run = fresh, run_from_body(fresh)
        log.warning("run.end_conflicted", run=run.name, namespace=run.namespace, phase=phase.value)

    # --- the per-run reconcile ---------------------------------------------------------------------------
    async def reconcile(self, key: RunKey) -> float | None:
        """One pass; a pass that raises is retried with backoff, and after a bound the run ends Error."""
        metrics.RECONCILE_PASSES.inc()
        try:
            again = await self._reconcile(key)
        except Exception as e:
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            metrics.RECONCILE_ERRORS.labels(error=type(e).__name__).inc()
            log.warning(
                "reconcile.failed",
                run=key[1],
                namespace=key[0],
                failures=failures,
                error=type(e).__name__,
                where=_where(e),
                # our own errors are value-free by design; any other's text may quote the input it choked on
                detail=str(e)[:300] if isinstance(e, errors.HelmE2EError) else "",
            )
            return await self._after_failure(
                key, end_runs.decide_reconcile_failure(failures, type(e).__name__)
            )
        self._failures.pop(key, None)
        return again

    async def _after_failure(self, key: RunKey, actions: Sequence[act.EndRun | act.Requeue]) -> float | None:
        """Retry later, or give up: end the run (read afresh) and forget its failures."""
        again: float | None = None
        for action in actions:
            if isinstance(action, act.EndRun):
                if (body := await self.kube.get_run(*key)) is not None:
                    await self.end(run_from_body(body), body, action.phase, action.reason, action.message)
                self._failures.pop(key, None)
            else:
                again = action.after
        return again

    async def _reconcile(self, key: RunKey) -> float | None:
        body = await self.kube.get_run(*key)
        if body is None:
            self.planner.forget(key)
            return None
        try:
            run = run_from_body(body)
        except ValidationError as e:  # hand-made: not a run the operator writes, nothing in it is used
            await self._refuse_unreadable(key, body, e)
            return None
        if run.status.phase.is_final:
            self.planner.forget(key)  # a final run creates nothing more
        why = trust.refuse_run(run) if not run.status.phase.is_final else None
        if why is not None:  # before anything of its release is read: a forged run reaches nothing
            await self._refuse(run, body, why)
            return None
        observed = lifecycle.Observed(now=self.now(), objects=await self.observer.objects(run))
        try:
            actions, observed = await self._decide(run, observed)
        except errors.RunRefused as e:  # its release Secret is not the one it was planned from
            await self._refuse(run, body, str(e))
            return None
        return await self._apply(run, body, actions, observed)

    async def _refuse_unreadable(self, key: RunKey, body: Mapping[str, Any], error: ValidationError) -> None:
        invalid = [".".join(str(p) for p in e["loc"]) for e in error.errors()]  # names, no values
        phase = (body.get("status") or {}).get("phase")
        match end_runs.decide_unreadable(phase, invalid, now=self.now()):
            case [act.PatchStatus() as patch, act.PostEvent() as event]:
                metrics.RUNS_REFUSED.inc()
                log.warning("run.refused", run=key[1], namespace=key[0], reason=event.message)
                uid = str((body.get("metadata") or {}).get("uid") or "")
                await self.status.refuse_unreadable(key, uid, patch, event)

    async def _refuse(self, run: Run, body: Mapping[str, Any], why: str) -> None:
        metrics.RUNS_REFUSED.inc()
        log.warning("run.refused", run=run.name, namespace=run.namespace, reason=why)
        self.planner.forget((run.namespace, run.name))
        await self.end(run, body, RunPhase.REFUSED, names.REASON_REFUSED, why)

    async def _decide(
        self, run: Run, observed: lifecycle.Observed
    ) -> tuple[list[act.Action], lifecycle.Observed]:
        """The decision, once everything it asked to see was fetched (answered into `observed` in place of
        the Fetch actions: the returned list asks for nothing more), and what it was decided on."""
        for _ in range(MAX_PASSES):
            actions = lifecycle.decide_run(run, observed, self.policy)
            fetched = await self.observer.answer(run, observed, actions)
            if fetched is None:
                return actions, observed
            observed = fetched
        raise errors.HelmE2EError(f"no decision after {MAX_PASSES} passes")

    async def _apply(
        self, run: Run, body: Mapping[str, Any], actions: Sequence[act.Action], observed: lifecycle.Observed
    ) -> float | None:
        """Do what was decided, in order. The API's refusals to create are fed back into the decision (on
        what it was decided on: nothing is fetched again) before anything is written; a conflicting status
        patch stops the rest: decide again."""
        refused = await self.creator.create(run, actions)
        if refused:
            observed = replace(observed, refused={**observed.refused, **refused})
            actions = [a for a in (await self._decide(run, observed))[0] if not _is_create(a)]
        again: float | None = None
        for action in actions:
            if isinstance(action, act.PatchStatus):
                if (
                    await self.status.write(run, action, resource_version=read_version(body))
                    != Patched.APPLIED
                ):
                    return AFTER_CONFLICT
                if action.status.phase.is_final:  # its plan goes now, not at the pass the pods' TTL brings
                    self.planner.forget((run.namespace, run.name))
            elif (after := await self._apply_one(run, action)) is not None:
                again = after if again is None else min(again, after)
        return again

    async def _apply_one(self, run: Run, action: act.Action) -> float | None:
        """One action after the status write; when to look again, if it says."""
        if isinstance(action, act.PostEvent):
            await self.status.post_event(run_ref(run), action)
        elif isinstance(action, act.DeletePods | act.DeleteJobs | act.DeleteHookObjects):
            await self.cleanup.delete(run, action)
        elif isinstance(action, act.PruneHistory):
            await self.cleanup.prune(run, action)
        elif isinstance(action, act.Deliver):
            return await self.delivery.deliver(run, action)
        elif isinstance(action, act.Rollback):
            return await roll_back(
                run, action, helm=self.helm, kube=self.kube, status=self.status, now=self.now()
            )
        elif isinstance(action, act.Requeue):
            return action.after
        return None
