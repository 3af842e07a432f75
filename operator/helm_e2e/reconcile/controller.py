"""The controller: Helm release secrets in, E2ERuns out; every run's passes go to the Executor.

Intake decides nothing itself (`core/sources/intake.py`, `core/plan` and `core/lifecycle` do): it decodes
and plans a deployed revision in one sandbox call, creates its E2ERun (the deterministic name is the
per-revision lock) with the plan kept for the run's life, ends the older revisions' active runs, and queues
the new run, whose first reconcile creates the pods.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from helm_e2e import errors
from helm_e2e.clients import metrics
from helm_e2e.clients.helm import HelmPort
from helm_e2e.clients.kube import ObjectRef
from helm_e2e.clients.kube_port import KubePort
from helm_e2e.clients.sandbox import Sandbox
from helm_e2e.core.lifecycle import decide as lifecycle
from helm_e2e.core.lifecycle import reruns
from helm_e2e.core.model import names
from helm_e2e.core.model.bounded import BoundedSet
from helm_e2e.core.model.dns_names import build_run_name
from helm_e2e.core.model.release import Release
from helm_e2e.core.model.run import RequestTrigger, Run, RunRequest
from helm_e2e.core.model.run_codec import build_run_body, readable_runs, run_from_body
from helm_e2e.core.model.run_status import RunPhase
from helm_e2e.core.plan import build as planning
from helm_e2e.core.plan import decode_and_plan as planjob
from helm_e2e.core.plan import run_spec
from helm_e2e.core.plan.requested import plan_for_request
from helm_e2e.core.sources import flux, intake
from helm_e2e.core.sources import helm_secret as releases
from helm_e2e.reconcile import application_intake, application_reruns
from helm_e2e.reconcile.executor import MAX_RECONCILE_FAILURES, Executor, RunKey
from helm_e2e.reconcile.intake_lanes import IntakeLanes
from helm_e2e.reconcile.planning import PlanContext, Planner
from helm_e2e.reconcile.release_checks import ReleaseChecks
from helm_e2e.reconcile.suite_status import record_suite_problems
from helm_e2e.reconcile.workqueue import WorkQueue
from helm_e2e.reconcile.write_status import run_ref
from helm_e2e.settings import Settings

if TYPE_CHECKING:  # the artifact stack (obstore, jwt, tarfile) is imported only when artifacts are on
    from helm_e2e.artifacts.service import Artifacts

__all__ = ["MAX_RECONCILE_FAILURES", "Controller"]
MAX_REMEMBERED = 10_000  # per memory of the controller; a forgotten entry costs one more check, never a run
log = structlog.get_logger(__name__)


class Controller:
    def __init__(
        self,
        *,
        settings: Settings,
        kube: KubePort,
        clock: Callable[[], datetime] | None = None,
        sandbox: Sandbox | None = None,
        helm: HelmPort | None = None,
        artifacts: Artifacts | None = None,
    ) -> None:
        self.settings = settings
        self.kube = kube
        self.now = clock or (lambda: datetime.now(UTC))
        self.planner = Planner(settings=settings, kube=kube, clock=self.now, sandbox=sandbox)
        self.executor = Executor(
            settings=settings,
            kube=kube,
            planner=self.planner,
            clock=self.now,
            helm=helm,
            artifacts=artifacts,
        )
        self.queue: WorkQueue[RunKey] = WorkQueue(self.executor.reconcile)
        self.lanes = IntakeLanes()
        self.checks = ReleaseChecks(self.cancel_if_uninstalled)  # a deployed revision gone: installed still?
        # bounded: a tenant rewriting a bad Secret or annotating tokens must not grow them without end
        self._warned: BoundedSet[tuple[str, str, str]] = BoundedSet(MAX_REMEMBERED)
        # (namespace, release, token): seen done
        self._requests_done: BoundedSet[tuple[str, str, str]] = BoundedSet(MAX_REMEMBERED)

    async def reconcile(self, key: RunKey) -> float | None:
        return await self.executor.reconcile(key)

    # --- intake: Helm release secrets -----------------------------------------------------------------
    async def on_release_secret(
        self, event_type: str | None, secret: Mapping[str, Any], *, received: float | None = None
    ) -> None:
        """`received`: time.monotonic() when the handler got the event (the run.created line's timings)."""
        received = time.monotonic() if received is None else received
        event = intake.classify_secret_event(event_type, secret)
        if event.kind == intake.IntakeKind.CHECK:  # most often an upgrade's superseding: not asked at once
            self.checks.later(event.namespace, event.release)
            return
        if event.kind in (intake.IntakeKind.CANCEL, intake.IntakeKind.PLAN):
            self.checks.answered(event.namespace, event.release)
        if event.kind == intake.IntakeKind.CANCEL:
            await self.cancel_runs(event.namespace, event.release)
        if event.kind != intake.IntakeKind.PLAN:
            return
        grace = self.settings.startup_grace_seconds
        if intake.created_before_grace(secret, now=self.now(), grace_seconds=grace):
            return
        problem = releases.check_secret_identity(secret)  # metadata only: before anything is decoded
        if problem is not None:
            await self._warn_secret(secret, names.EVENT_RELEASE_IDENTITY_MISMATCH, problem)
            return
        # kopf's listing (no event type: a start, a relist) mostly finds runs that exist: ask first.
        # A live event is a new revision: create at once, a run that exists already answers 409
        async with self.lanes.lane(event_type):  # a start's listing never delays a live revision
            await self._intake_revision(secret, received=received, ask_first=event_type is None)

    async def _intake_revision(self, secret: Mapping[str, Any], *, received: float, ask_first: bool) -> None:
        """A deployed revision (its Secret's identity checked): decoded and planned in ONE sandbox call,
        then its run created if it was deployed within the grace period."""
        named = intake.run_key_of_secret(secret)
        if named is None:  # checked by the caller
            return
        namespace, name = str(secret["metadata"]["namespace"]), build_run_name(*named)
        read_at = time.monotonic()
        if ask_first:  # the plan's reads beside the GET: one round trip before the run exists, not two
            existing, context = await asyncio.gather(
                self.kube.get_run(namespace, name), self.planner.context(namespace)
            )
            if existing is not None:
                return  # already planned: operator restart, `helm test`, or a status-only rewrite
        else:
            context = await self.planner.context(namespace)
        planning_at = time.monotonic()
        planned = await self._decode_and_plan(secret, context)
        grace = self.settings.startup_grace_seconds
        if planned is None or not intake.is_recent(planned.release, now=self.now(), grace_seconds=grace):
            return
        timing = {"received": received, "read": read_at, "planning": planning_at, "planned": time.monotonic()}
        plan = await self._plan_to_run(planned, None)
        if plan is not None:
            await self._create_run(planned, plan, secret, context, name=name, timing=timing)

    async def _decode_and_plan(
        self, secret: Mapping[str, Any], context: PlanContext
    ) -> planjob.ReleasePlan | None:
        """The revision decoded and planned (one sandbox call); None, with a warning, when it cannot be."""
        try:
            return await self.planner.plan(secret, context=context)
        except errors.ReleaseIdentityError as e:
            await self._warn_secret(secret, names.EVENT_RELEASE_IDENTITY_MISMATCH, str(e))
        except errors.ReleaseDecodeError as e:
            await self._warn_secret(secret, names.EVENT_RELEASE_DECODE_FAILED, str(e))
        except errors.SandboxError as e:  # out of time or memory, decoding or planning
            await self._warn_secret(
                secret, names.EVENT_RELEASE_DECODE_FAILED, f"decoding or planning failed: {e}"
            )
        return None

    async def _warn_secret(self, secret: Mapping[str, Any], reason: str, message: str) -> None:
        meta = secret.get("metadata") or {}
        # once per Secret (its uid), not per rewrite: Helm relabels a revision's Secret when it is
        # superseded, and a tenant may rewrite a bad one in a loop (an Event each time, before)
        key = (meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", ""))
        if key in self._warned:
            return
        self._warned.add(key)
        metrics.RELEASE_DECODE_ERRORS.labels(reason=reason).inc()
        log.warning("release.rejected", namespace=key[0], secret=key[1], reason=reason, error=message)
        ref = ObjectRef("Secret", "v1", key[0], key[1], meta.get("uid", ""))
        await self.kube.post_event(ref, type="Warning", reason=reason, message=message)

    async def _plan_to_run(
        self, planned: planjob.ReleasePlan, request: RunRequest | None
    ) -> planning.Plan | None:
        """The plan the run is created from: without the chart's tests when Flux runs them, only the
        requested suite's tests for a scheduled check; None: nothing to run."""
        plan = await self.planner.with_flux(planned.release, planned.plan)
        return plan_for_request(plan, request)

    async def _create_run(
        self,
        planned: planjob.ReleasePlan,
        plan: planning.Plan,
        secret: Mapping[str, Any],
        context: PlanContext,
        *,
        name: str,
        attempt: reruns.NewAttempt | None = None,
        request: RunRequest | None = None,
        timing: dict[str, float] | None = None,
    ) -> bool:
        """Create the run of `plan` (`planned`'s, made ready by `_plan_to_run`), or with `attempt` one more
        run of the revision; False: someone else created it first (409): their run, their pods."""
        release = planned.release
        spec = run_spec.build_revision_run_spec(
            release,
            plan,
            secret_meta=secret.get("metadata") or {},
            deadline_seconds=self.settings.run_deadline_seconds,
            default_retries=self.settings.default_retries,
            attempt=attempt.attempt if attempt else None,
            request=request,
        )
        creating_at = time.monotonic()
        # kept before the create: the run's ADDED event may wake its first pass before the create returns
        self.planner.keep((release.namespace, name), plan)
        created = await self.kube.create_run(build_run_body(spec, name=name, namespace=release.namespace))
        if created is None:
            self.planner.forget((release.namespace, name))  # someone else's run: planned from its Secret
            return False
        timings = intake.timings_ms(timing, creating_at=creating_at, now=time.monotonic())
        await self.start_run(created, release, plan, timings=timings)
        # the suites' status says how they rendered for this run: written once the run exists (a run that
        # existed already, a `helm test` rewrite say, rewrites nothing)
        await record_suite_problems(self.kube, context.suites, planned.plan, now=self.now())
        return True

    async def start_run(
        self,
        created: Mapping[str, Any],
        release: Release,
        plan: planning.Plan,
        *,
        timings: Mapping[str, float],
    ) -> Run:
        """A run just created (its body as the API answered): its plan kept for its life, queued, announced;
        the older revisions' active runs end."""
        run = run_from_body(created)
        self.planner.keep((run.namespace, run.name), plan)
        self.queue.add((run.namespace, run.name))
        await self.announce(run, release, plan, timings=timings)
        await self.supersede_older_runs(run)
        return run

    async def announce(
        self, run: Run, release: Release, plan: planning.Plan, *, timings: Mapping[str, float]
    ) -> None:
        """Metrics, the log line (with the intake's `timings`, ms) and the Events of a new run (Flux's tests,
        what was refused)."""
        metrics.RUNS_CREATED.labels(trigger=release.trigger.value).inc()
        since_deployed = None
        if release.last_deployed:
            since_deployed = max(0.0, (self.now() - release.last_deployed).total_seconds())
            metrics.TRIGGER_LATENCY.observe(since_deployed)
        request = run.spec.request
        log.info(
            "run.created",
            run=run.name,
            namespace=run.namespace,
            tests=len(plan.tests),
            trigger=release.trigger.value,
            image_tag=run.spec.release.image_tag,
            request=request.trigger.value if request else None,
            since_deployed_ms=round(since_deployed * 1000, 1) if since_deployed is not None else None,
            **timings,
        )
        # no Normal "Planned" Event: spec.tests names what was planned (a request less per run); what is
        # worth telling still is: Flux's tests, refused hooks, plan notes
        if plan.managed_by is not None and plan.managed_by.tests:
            message = flux.describe_flux_tests(plan.managed_by)
            await self.kube.post_event(
                run_ref(run), type="Normal", reason=names.EVENT_FLUX_TESTS, message=message
            )
        for reason, notes in (
            (names.EVENT_HOOK_REFUSED, plan.refused_hooks),
            (names.EVENT_PLAN_NOTE, plan.notes),
        ):
            for note in notes:
                await self.kube.post_event(run_ref(run), type="Warning", reason=reason, message=note)

    # --- intake: Argo CD Applications (reconcile/application_intake.py) ------------------------------------
    async def on_application(self, app: Mapping[str, Any]) -> None:
        await application_intake.on_application(self, app)

    # --- re-runs of the deployed revision: on demand (annotation) and scheduled ---------------------------
    async def on_run_annotations(
        self,
        namespace: str,
        release: str,
        annotations: Mapping[str, str],
        *,
        run: Mapping[str, Any] | None = None,
    ) -> None:
        """`helm-e2e.dev/rerun=<token>` on an E2ERun (`run`): run the release's deployed revision once more,
        or an Argo CD application's latest sync (reconcile/application_reruns.py)."""
        token = reruns.rerun_token(annotations)
        if token and (namespace, release, token) not in self._requests_done:
            request = RunRequest(trigger=RequestTrigger.RERUN, token=token)
            if not await application_reruns.rerun_if_application(self, namespace, run or {}, request):
                await self.request_attempt(namespace, release, request)
            self._requests_done.add((namespace, release, token))

    async def request_attempt(self, namespace: str, release: str, request: RunRequest) -> str | None:
        """One more run of the deployed revision for `request`, at most once per token; its name or None."""
        if reruns.is_done([r for r, _ in await self._runs_of(namespace, release)], request.token):
            return None  # the cheap check first: every restart sees the annotation again
        revision = reruns.deployed_revision(await self.kube.release_secret_labels(namespace, release))
        if revision is None:
            log.info("rerun.skipped", namespace=namespace, release=release, reason="no deployed revision")
            return None
        secret = await self.kube.get_secret(namespace, f"{names.HELM_SECRET_PREFIX}{release}.v{revision}")
        if secret is None:
            return None
        problem = releases.check_secret_identity(secret)
        if problem is not None:
            await self._warn_secret(secret, names.EVENT_RELEASE_IDENTITY_MISMATCH, problem)
            return None
        context = await self.planner.context(namespace)
        planned = await self._decode_and_plan(secret, context)  # once, whatever the tries below
        plan = await self._plan_to_run(planned, request) if planned is not None else None
        if planned is None or plan is None:
            return None  # not plannable, or nothing to run (a scheduled suite that does not test it)
        for tries in itertools.count(1):
            runs = [r for r, _ in await self._runs_of(namespace, release)]
            attempt = reruns.decide_new_attempt(runs, release=release, revision=revision, request=request)
            if attempt is None:
                return None
            created = await self._create_run(
                planned, plan, secret, context, name=attempt.name, attempt=attempt, request=request
            )
            step = intake.decide_after_attempt(created=created, tries=tries)
            if step != intake.AttemptStep.RETRY:
                return attempt.name if step == intake.AttemptStep.DONE else None
        return None  # not reached: the tries are bounded by decide_after_attempt

    # --- ending runs: supersede, cancel ----------------------------------------------------------------
    async def supersede_older_runs(self, run: Run) -> None:
        revision = run.spec.release.revision
        attempt, trigger = run.spec.attempt or 1, run.spec.release.trigger
        if not lifecycle.may_supersede(revision=revision, attempt=attempt, trigger=trigger):
            return  # nothing can be older: no LIST of the release's runs
        for older, body in await self._runs_of(run.namespace, run.spec.release.name):
            if older not in lifecycle.decide_superseded([older], revision=revision, attempt=attempt):
                continue
            if flux.pending_flux_tests(older):  # Flux's outcome first: it may be all the run waits for
                if (ending := flux.before_superseding(older, await self.planner.flux_tests(older))) is None:
                    self.queue.add((older.namespace, older.name))  # it ends with its verdict on its pass
                    continue
                older = ending
            why = f"superseded by revision {revision}"
            await self.end_run(older, body, RunPhase.SUPERSEDED, names.REASON_SUPERSEDED, why)

    async def cancel_if_uninstalled(self, namespace: str, release: str) -> None:
        if intake.cancels_runs(await self.kube.count_release_secrets(namespace, release)):
            await self.cancel_runs(namespace, release)

    async def cancel_runs(self, namespace: str, release: str) -> None:
        for run, body in await self._runs_of(namespace, release):
            await self.end_run(
                run, body, RunPhase.CANCELLED, names.REASON_UNINSTALLED, "the release was uninstalled"
            )

    async def _runs_of(self, namespace: str, release: str) -> list[tuple[Run, dict[str, Any]]]:
        return [
            (run, dict(body)) for run, body in readable_runs(await self.kube.list_runs(namespace, release))
        ]

    async def end_run(
        self, run: Run, body: Mapping[str, Any], phase: RunPhase, reason: str, message: str
    ) -> None:
        await self.executor.end(run, body, phase, reason, message)
        self.queue.add((run.namespace, run.name))  # its pods go on its own next pass
