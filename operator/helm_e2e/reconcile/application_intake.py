"""Intake of Argo CD Applications in the shell: a new successful sync gets its run `<app>-a<id>`.

What to do is decided in the core (`core/sources/argocd.py`: which sync, tested or not ready yet); this reads
the runs, plans the sync in the sandbox, creates the run through the controller's queue and announcements,
and ends it Error at once when the application did not become Healthy in time. Re-runs of a sync
(reconcile/application_reruns.py) create their runs here too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

import structlog

from helm_e2e import errors
from helm_e2e.clients.kube_port import KubePort
from helm_e2e.core.model import names
from helm_e2e.core.model.release import Release
from helm_e2e.core.model.run import Run, RunRequest
from helm_e2e.core.model.run_codec import build_run_body
from helm_e2e.core.model.run_status import RunPhase
from helm_e2e.core.plan import build as planning
from helm_e2e.core.plan import run_spec
from helm_e2e.core.plan.build import Plan
from helm_e2e.core.sources import argocd, intake
from helm_e2e.reconcile.planning import Planner
from helm_e2e.reconcile.suite_status import record_suite_problems
from helm_e2e.settings import Settings

log = structlog.get_logger(__name__)
Body = Mapping[str, Any]  # an E2ERun as the API answered its create
Timings = Mapping[str, float]  # the intake's timings, ms (the log line of a new run)


class RunHost(Protocol):
    """What the intake uses of the controller (reconcile/controller.py): its clients and planner, and how it
    starts a run it created (queued, announced) and ends one."""

    settings: Settings
    kube: KubePort
    planner: Planner
    now: Callable[[], datetime]

    async def start_run(self, created: Body, release: Release, plan: Plan, *, timings: Timings) -> Run: ...

    async def end_run(
        self, run: Run, body: Mapping[str, Any], phase: RunPhase, reason: str, message: str
    ) -> None: ...


async def on_application(host: RunHost, app: Mapping[str, Any]) -> None:
    """A new successful sync, once Healthy, gets its run `<app>-a<id>` in the destination namespace; one
    not Healthy within the readiness timeout a run that ends Error naming what is not healthy."""
    timeout = host.settings.ready_timeout_seconds
    decision = argocd.decide_sync(app, now=host.now(), ready_timeout_seconds=timeout)
    sync = decision.sync
    if sync is None or decision.verdict not in (argocd.Verdict.TEST, argocd.Verdict.NOT_READY):
        return
    release = argocd.build_release(app, sync)
    grace = host.settings.startup_grace_seconds + (
        timeout if decision.verdict == argocd.Verdict.NOT_READY else 0
    )
    name = argocd.build_run_name(sync.app, sync.history_id)
    if not intake.is_recent(release, now=host.now(), grace_seconds=grace):
        return
    if await host.kube.get_run(sync.namespace, name) is not None:
        return  # tested already: every later event of the application finds its run
    context = await host.planner.context(sync.namespace)
    try:
        plan = await host.planner.plan_application(release, context)
    except errors.SandboxError as e:
        log.warning("application.plan_failed", application=sync.app, namespace=sync.namespace, error=str(e))
        return
    run = await create_application_run(host, release, sync, plan, name=name)
    if run is None:
        return
    await record_suite_problems(host.kube, context.suites, plan, now=host.now())
    if decision.verdict == argocd.Verdict.NOT_READY:
        body = await host.kube.get_run(run.namespace, run.name) or {}
        await host.end_run(run, body, RunPhase.ERROR, names.REASON_RELEASE_NOT_READY, decision.message)


async def create_application_run(
    host: RunHost,
    release: Release,
    sync: argocd.Sync,
    plan: planning.Plan,
    *,
    name: str,
    attempt: int = 1,
    request: RunRequest | None = None,
) -> Run | None:
    """A sync's run (with `attempt` > 1 and `request`: a re-run, reconcile/application_reruns.py)."""
    spec = run_spec.build_run_spec(
        release,
        plan.model_copy(update={"managed_by": argocd.managed_by(sync)}),
        deadline_seconds=host.settings.run_deadline_seconds,
        default_retries=host.settings.default_retries,
        secret_uid=sync.uid,  # the Application's: a run is worked on only against that very one
        commit=argocd.commit_of(sync),
    ).model_copy(update={"attempt": attempt if attempt > 1 else None, "request": request})
    host.planner.keep((sync.namespace, name), plan)  # before the create: its first pass may come first
    created = await host.kube.create_run(build_run_body(spec, name=name, namespace=sync.namespace))
    if created is None:
        host.planner.forget((sync.namespace, name))  # someone else's run: planned from the Application
        return None
    return await host.start_run(created, release, plan, timings={})
