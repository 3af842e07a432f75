"""Re-runs of an Argo CD application's latest sync in the shell, on demand and on a schedule.

What to run is decided in the core (`core.lifecycle.reruns.decide_application_attempt`): this reads the
Application (one GET, named by the annotated run or by the namespace's runs), plans its sync again from it
(never from a run's spec), and creates the run `<app>-a<id>-r<n>` through the controller, as the intake
does for a new sync. A request whose attempt name another request took first (409) is decided again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from helm_e2e import errors
from helm_e2e.core.lifecycle import reruns
from helm_e2e.core.model.release import ManagedBy
from helm_e2e.core.model.run import Run, RunRequest
from helm_e2e.core.model.run_codec import readable_runs, runs_from_bodies
from helm_e2e.core.sources import argocd
from helm_e2e.reconcile.application_intake import RunHost, create_application_run
from helm_e2e.reconcile.suite_status import record_suite_problems

log = structlog.get_logger(__name__)
MAX_RACES = 3  # a different request may take the same attempt name first (409): decide again


async def _runs(controller: RunHost, namespace: str, release: str | None) -> list[Run]:
    return [run for run, _ in readable_runs(await controller.kube.list_runs(namespace, release))]


async def rerun_if_application(
    controller: RunHost, namespace: str, run: Mapping[str, Any], request: RunRequest
) -> bool:
    """A re-run asked on `run`: when it is an Argo CD application's run, request it here (True)."""
    annotated = runs_from_bodies([run] if run else [])
    managed = argocd.application_of(annotated[0]) if annotated else None
    if managed is None:
        return False
    await request_application_attempt(controller, namespace, managed, request, annotated=annotated[0].name)
    return True


async def request_application_attempt(
    controller: RunHost, namespace: str, managed: ManagedBy, request: RunRequest, *, annotated: str = ""
) -> str | None:
    """One more run of the application's latest sync in `namespace` for `request`; its name or None."""
    runs = await _runs(controller, namespace, managed.name)
    if reruns.is_done(runs, request.token):
        return None  # the cheap check first: every restart sees the annotation again
    app = await controller.kube.get_application(managed.namespace, managed.name)
    for _ in range(MAX_RACES):
        decision = reruns.decide_application_attempt(
            app or {}, namespace=namespace, runs=runs, request=request, annotated=annotated
        )
        if app is None:
            decision = reruns.ApplicationAttempt(why="the Application is gone (or not readable)")
        if decision.sync is None or decision.attempt is None:
            log.info("rerun.skipped", namespace=namespace, application=managed.name, reason=decision.why)
            return None
        if app and await _create(controller, app, decision.sync, decision.attempt, request):
            return decision.attempt.name
        if await controller.kube.get_run(namespace, decision.attempt.name) is None:
            return None  # nothing to run (a scheduled suite that does not test this application)
        runs = await _runs(controller, namespace, managed.name)
    return None


async def _create(
    controller: RunHost,
    app: Mapping[str, Any],
    sync: argocd.Sync,
    attempt: reruns.NewAttempt,
    request: RunRequest,
) -> bool:
    """Plan the sync from its Application and create the attempt's run; False: not created."""
    release = argocd.build_release(app, sync)
    context = await controller.planner.context(sync.namespace)
    try:
        plan = await controller.planner.plan_application(release, context)
    except errors.SandboxError as e:
        log.warning("application.plan_failed", application=sync.app, namespace=sync.namespace, error=str(e))
        return False
    if request.suite:  # a scheduled check runs its own suite's tests only
        plan = plan.model_copy(update={"tests": reruns.suite_tests(plan.tests, request.suite)})
        if not plan.tests:
            return False
    run = await create_application_run(
        controller, release, sync, plan, name=attempt.name, attempt=attempt.attempt, request=request
    )
    if run is None:
        return False
    await record_suite_problems(controller.kube, context.suites, plan, now=controller.now())
    return True


async def request_scheduled(controller: RunHost, namespace: str, request: RunRequest) -> list[str]:
    """A scheduled slot of a suite with `spec.applications`: one more run of the latest tested sync of each
    application whose runs live in this namespace (the suite's own tests; one that does not select it
    gets none)."""
    started = []
    for managed in reruns.scheduled_applications(await _runs(controller, namespace, None)):
        if name := await request_application_attempt(controller, namespace, managed, request):
            started.append(name)
    return started
