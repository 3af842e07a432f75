"""The executor: observes one run, asks `core.lifecycle` what to do, and does exactly that.

It decides nothing itself. Actions are applied in the order decided; a conflicting status patch stops the
pass (the rest is decided again on a fresh read), and the API's refusals to create a pod are fed back into
the same pass as observations, so the run goes on without them.
"""

from __future__ import annotations

import functools
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
from helm_e2e.clients.kube import ObjectRef, Patched
from helm_e2e.clients.kube_port import KubePort
from helm_e2e.core.artifacts import rules as artifact_rules
from helm_e2e.core.lifecycle import decide as lifecycle
from helm_e2e.core.lifecycle import reruns, trust
from helm_e2e.core.lifecycle.decide import Action, Observed
from helm_e2e.core.model import names
from helm_e2e.core.model.run_codec import run_from_body, runs_from_bodies, status_body
from helm_e2e.core.model.schema import Run, RunPhase, RunStatus, TestPhase
from helm_e2e.core.outcomes import rollback as rollbacks
from helm_e2e.core.plan import hook_trust
from helm_e2e.core.results import retries
from helm_e2e.core.results.run_tests import TestObjects, log_container, log_tail
from helm_e2e.reconcile import send_webhook
from helm_e2e.reconcile.planning import Planner
from helm_e2e.reconcile.report_and_rollback import Outcomes, run_ref
from helm_e2e.settings import Settings

if TYPE_CHECKING:  # the artifact stack (obstore, jwt, tarfile) is imported only when artifacts are on
    from helm_e2e.artifacts.service import Artifacts

log = structlog.get_logger(__name__)


def _where(error: BaseException) -> str:
    """file:line where an unexpected error was raised (a place in our code, never a value)."""
    frames = traceback.extract_tb(error.__traceback__)
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""


def _is_create(action: Action) -> bool:
    return isinstance(action, lifecycle.CreateHookObjects | lifecycle.CreateTest)


RunKey = tuple[str, str]  # (namespace, name)
MAX_RECONCILE_FAILURES = 5  # then the run ends Error: never an endless traceback loop
MAX_END_ATTEMPTS = 5  # an end decided again after a conflicting status write
AFTER_CONFLICT = 0.2  # seconds: a conflicting status write is decided again on a fresh read this soon
MAX_PASSES = 4  # observe → decide → act rounds in one reconcile (fetches and refusals add a round)


def build_policy(settings: Settings) -> lifecycle.Policy:
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
        self.settings = settings
        self.artifacts = artifacts
        self.kube = kube
        self.helm = helm or Helm(
            binary=settings.helm_binary, timeout_seconds=settings.rollback_timeout_seconds
        )
        self.planner = planner
        self.policy = build_policy(settings)
        self.now = clock
        self.outcomes = Outcomes(
            settings=settings, kube=kube, helm=self.helm, artifacts=artifacts, policy=self.policy, clock=clock
        )
        self._failures: dict[RunKey, int] = {}

    async def end(
        self, run: Run, body: Mapping[str, Any], phase: RunPhase, reason: str, message: str
    ) -> None:
        """Supersede, cancel or fail an active run (its pods go on the run's next pass). The run's own
        reconcile may write its status meanwhile: a conflicting write is decided again on a fresh read, so
        the end is never lost (a lost supersede let the old run finish as Succeeded)."""
        for _ in range(MAX_END_ATTEMPTS):
            actions = lifecycle.decide_end(run, phase=phase, reason=reason, message=message, now=self.now())
            if not actions:
                return  # already final
            observed = Observed(now=self.now(), objects=TestObjects())
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
            if failures < MAX_RECONCILE_FAILURES:
                return float(2**failures)
            await self._give_up(key, e)
            return 1.0
        self._failures.pop(key, None)
        return again

    async def _give_up(self, key: RunKey, error: Exception) -> None:
        body = await self.kube.get_run(*key)
        if body is not None:
            message = (
                f"the operator failed {MAX_RECONCILE_FAILURES} times on this run ({type(error).__name__})"
            )
            await self.end(run_from_body(body), body, RunPhase.ERROR, names.REASON_RECONCILE_FAILED, message)
        self._failures.pop(key, None)

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
        observed = Observed(now=self.now(), objects=await self._observe_objects(run))
        try:
            actions = await self._decide(run, observed)
        except errors.RunRefused as e:  # its release Secret is not the one it was planned from
            await self._refuse(run, body, str(e))
            return None
        return await self._apply(run, body, actions, observed)

    async def _refuse_unreadable(self, key: RunKey, body: Mapping[str, Any], error: ValidationError) -> None:
        if (body.get("status") or {}).get("phase") == RunPhase.REFUSED:
            return
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in error.errors()})[:5]  # names, no values
        why = f"the run is not one the helm-e2e operator writes (invalid: {', '.join(fields)})"
        metrics.RUNS_REFUSED.inc()
        log.warning("run.refused", run=key[1], namespace=key[0], reason=why)
        status = RunStatus(phase=RunPhase.REFUSED, message=why, completed_at=self.now())
        await self.kube.patch_run_status(*key, status_body(status))
        uid = str((body.get("metadata") or {}).get("uid") or "")
        ref = ObjectRef(names.RUN_KIND, names.API_VERSION, key[0], key[1], uid)
        await self.kube.post_event(ref, type="Warning", reason=names.REASON_REFUSED, message=why)

    async def _refuse(self, run: Run, body: Mapping[str, Any], why: str) -> None:
        metrics.RUNS_REFUSED.inc()
        log.warning("run.refused", run=run.name, namespace=run.namespace, reason=why)
        self.planner.forget((run.namespace, run.name))
        await self.end(run, body, RunPhase.REFUSED, names.REASON_REFUSED, why)

    async def _decide(self, run: Run, observed: Observed) -> list[Action]:
        """The decision, once everything it asked to see was fetched (answered into `observed` in place of
        the Fetch actions: the returned list asks for nothing more)."""
        for _ in range(MAX_PASSES):
            actions = lifecycle.decide_run(run, observed, self.policy)
            fetched = await self._fetch(run, observed, actions)
            if fetched is None:
                return actions
            observed = fetched
        raise errors.HelmE2EError(f"no decision after {MAX_PASSES} passes")

    async def _observe_objects(self, run: Run) -> TestObjects:
        """The run's pods by test; Jobs and their pods only when the run has Job tests (one more list)."""
        plain: list[Any] = []
        job_pods: dict[str, list[Any]] = {}
        for pod in await self.kube.list_run_pods(run.namespace, run.name):
            labels = pod["metadata"].get("labels") or {}
            test = labels.get(names.TEST_LABEL, "")
            if names.JOB_NAME_LABEL in labels:
                job_pods.setdefault(test, []).append(pod)
            else:
                plain.append(pod)
        pods, earlier = retries.index_pods(plain)  # per test, the highest attempt's pod
        jobs: dict[str, Any] = {}
        if any(t.kind == "Job" for t in run.spec.tests):
            for job in await self.kube.list_run_jobs(run.namespace, run.name):
                jobs[(job["metadata"].get("labels") or {}).get(names.TEST_LABEL, "")] = job
        return TestObjects(pods=pods, jobs=jobs, job_pods=job_pods, earlier_pods=earlier)

    async def _fetch(self, run: Run, observed: Observed, actions: Sequence[Action]) -> Observed | None:
        """Answer the decision's Fetch actions, in order; None when it asked for nothing."""
        logs, plan, rollout, history = observed.logs, observed.plan, observed.rollout, observed.history
        events, stored, flux = observed.events, observed.artifacts, observed.flux
        tests = {t.name: t for t in run.spec.tests}
        for action in actions:
            if isinstance(action, lifecycle.FetchLogs):
                pods = {t: observed.objects.log_pod(tests[t]) for t in action.tests}
                logs = {t: await self._log_tail(run, pod) for t, pod in pods.items()}
                if self.artifacts is not None:  # uploaded before the pod ended: the collector stops last
                    stored = {**stored, **await self.artifacts.manifests(run, action.tests)}
            elif isinstance(action, lifecycle.FetchEvents):
                pods = {t: observed.objects.log_pod(tests[t]) for t in action.tests}
                events = {
                    t: await self.kube.list_pod_events(run.namespace, pod["metadata"]["name"])
                    for t, pod in pods.items()
                    if pod is not None
                }
            elif isinstance(action, lifecycle.FetchPlan):
                plan = await self.planner.replan(run, action.tests)
            elif isinstance(action, lifecycle.FetchRollout):  # after FetchPlan: its objects are known
                ready, failed, pending = await self.kube.check_rollout(list(plan.rollout if plan else ()))
                rollout = lifecycle.Rollout(ready=ready, failed=failed, pending=pending)
            elif isinstance(action, lifecycle.FetchReleaseHistory):
                history = await self._history(run, action)
            elif isinstance(action, lifecycle.FetchFluxTests):
                flux = await self.planner.flux_tests(run)
        if (logs, plan, rollout, history, events, stored, flux) == (
            observed.logs,
            observed.plan,
            observed.rollout,
            observed.history,
            observed.events,
            observed.artifacts,
            observed.flux,
        ):
            return None
        empty = lifecycle.Replanned(tests={})
        return replace(
            observed,
            logs=logs or {},
            plan=plan or empty,
            rollout=rollout,
            history=history,
            events=events,
            artifacts=stored,
            flux=flux,
        )

    async def _history(self, run: Run, asked: lifecycle.FetchReleaseHistory) -> rollbacks.History:
        """The release's runs and stored revisions (secret labels, metadata only; none unless `asked` wants
        them); with `descriptions`, those of revisions newer than the run's (decoded in the sandbox), to
        recognise a rollback."""
        ref = run.spec.release
        labels = await self.kube.release_secret_labels(ref.namespace, ref.name) if asked.revisions else []
        revisions = {int(v) for lab in labels if (v := lab.get(names.HELM_VERSION_LABEL, "")).isdigit()}
        runs = runs_from_bodies(await self.kube.list_runs(ref.namespace, ref.name))
        rolled_back_to: dict[int, int] = {}
        for revision in sorted(r for r in revisions if r > ref.revision) if asked.descriptions else ():
            secret = await self.kube.get_secret(
                ref.namespace, f"{names.HELM_SECRET_PREFIX}{ref.name}.v{revision}"
            )
            if secret is None:
                continue
            try:
                target = (await self.planner.decode(secret)).rollback_revision
            except (errors.ReleaseDecodeError, errors.SandboxError):
                continue  # not Helm's own rollback revision, as far as we can tell
            if target is not None:
                rolled_back_to[revision] = target
        return rollbacks.History(
            deployed=reruns.deployed_revision(labels),
            revisions=revisions,
            runs=runs,
            rolled_back_to=rolled_back_to,
        )

    async def _apply(
        self, run: Run, body: Mapping[str, Any], actions: Sequence[Action], observed: Observed
    ) -> float | None:
        """Do what was decided, in order. The API's refusals to create are fed back into the decision
        before anything is written; a conflicting status patch stops the rest: decide again."""
        refused = await self._create(run, actions)
        if refused:
            observed = replace(observed, refused={**observed.refused, **refused})
            actions = [a for a in await self._decide(run, observed) if not _is_create(a)]
        again: float | None = None
        for action in actions:
            if isinstance(action, lifecycle.PatchStatus):
                if (patched := await self._patch(run, body, action.status)) != Patched.APPLIED:
                    log.debug("status.not_written", run=run.name, namespace=run.namespace, why=patched.value)
                    return AFTER_CONFLICT
                self._log_transitions(run, action.status)
                if action.mail_outcome:
                    metrics.EMAILS.labels(result=action.mail_outcome).inc()
                if action.rollback_outcome:
                    metrics.ROLLBACKS.labels(result=action.rollback_outcome).inc()
            elif isinstance(action, lifecycle.PostEvent):
                await self.kube.post_event(
                    run_ref(run), type=action.type, reason=action.reason, message=action.message
                )
            elif isinstance(
                action, lifecycle.DeletePods | lifecycle.DeleteJobs | lifecycle.DeleteHookObjects
            ):
                await self._delete(run, action)
            elif isinstance(action, lifecycle.SendReport):
                again = await self.outcomes.send_report(run, action.recipients)
            elif isinstance(action, lifecycle.SendNotification):
                after = await send_webhook.send_notification(
                    run, action.target, kube=self.kube, settings=self.settings, now=self.now
                )
                if after is not None:
                    again = after if again is None else min(again, after)
            elif isinstance(action, lifecycle.Rollback):
                again = await self.outcomes.rollback(run, action)
            elif isinstance(action, lifecycle.PruneHistory):
                await self._prune(run, action.runs)
            elif isinstance(action, lifecycle.Requeue):
                again = action.after if again is None else min(again, action.after)
        return again

    async def _create(self, run: Run, actions: Sequence[Action]) -> dict[str, tuple[str, str]]:
        """Create the hook objects, then the tests; what the API refused, by test (reason, message)."""
        refused: dict[str, tuple[str, str]] = {}
        for action in actions:
            if isinstance(action, lifecycle.CreateHookObjects):
                tests, create = action.tests, functools.partial(self._create_hook_objects, run, action)
            elif isinstance(action, lifecycle.CreateTest) and action.test not in refused:
                creator = self.kube.create_job if action.kind == "Job" else self.kube.create_pod
                body = await self._with_collector(run, action)
                tests, create = (action.test,), functools.partial(creator, body)
            else:
                continue
            try:
                await create()
            except errors.ApiRefused as e:
                refused |= dict.fromkeys(tests, (e.reason, e.message))
                metrics.CREATE_REFUSED.labels(reason=e.reason).inc()
                log.warning(
                    "create.refused",
                    run=run.name,
                    namespace=run.namespace,
                    tests=list(tests),
                    status=e.status,
                    reason=e.reason,
                    error=e.message[:300],
                )
        return refused

    async def _with_collector(self, run: Run, action: lifecycle.CreateTest) -> dict[str, Any]:
        """The test's body with the artifacts collector and its token (minted here: a signature)."""
        test = next((t for t in run.spec.tests if t.name == action.test), None)
        if self.artifacts is None or test is None:
            return action.body
        try:
            spec = await self.artifacts.collector_spec(run, test, now=self.now())
        except errors.StoreError as e:  # evidence is best effort: the test runs, without a collector
            why = f"artifacts not collected: the artifact store cannot be written ({e.reason})"
            log.warning("artifacts.unavailable", run=run.name, namespace=run.namespace, error=str(e))
            self.artifacts.not_collected(run, test.name, why)  # the test's artifactsMessage when it ends
            reason, message = names.EVENT_ARTIFACTS_UNAVAILABLE, f"{test.name}: {why}"
            await self.kube.post_event(run_ref(run), type="Warning", reason=reason, message=message)
            return action.body
        return artifact_rules.inject_collector(action.body, action.kind, spec)

    async def _create_hook_objects(self, run: Run, action: lifecycle.CreateHookObjects) -> None:
        """The hook set whole or not at all: in the order decided (Roles before RoleBindings), a binding only
        to a Role created just before (`hook_trust.refuse_to_bind`, by uid); on the first refusal what this
        pass created or adopted is deleted again, then the refusal ends the set's tests."""
        made: list[tuple[str, str]] = []  # (kind, name) in creation order
        roles: dict[str, str] = {}  # Role name → the uid its create returned
        try:
            for body, replace_ours in zip(action.bodies, action.replace_ours, strict=True):
                if why := hook_trust.refuse_to_bind(body, created_roles=roles):
                    raise errors.ApiRefused(why, status=403, reason=names.REASON_HOOK_REFUSED)
                uid = await self.kube.create_hook_object(
                    body, replace_ours=replace_ours, server_side=action.server_side_apply
                )
                kind, name = str(body["kind"]), str(body["metadata"]["name"])
                made.append((kind, name))
                if kind == "Role":
                    roles[name] = uid
        except errors.ApiRefused:
            for kind, name in reversed(made):
                await self.kube.delete_hook_object(kind, run.namespace, name, run=run.name)
            raise

    async def _delete(
        self, run: Run, action: lifecycle.DeletePods | lifecycle.DeleteJobs | lifecycle.DeleteHookObjects
    ) -> None:
        if isinstance(action, lifecycle.DeletePods):
            for pod in action.names:
                await self.kube.delete_pod(run.namespace, pod)
        elif isinstance(action, lifecycle.DeleteJobs):
            for job in action.names:
                await self.kube.delete_job(run.namespace, job)
        else:
            for kind, name in action.objects:
                await self.kube.delete_hook_object(kind, run.namespace, name, run=run.name)

    async def _patch(self, run: Run, body: Mapping[str, Any], status: RunStatus) -> Patched:
        rv = body.get("metadata", {}).get("resourceVersion")
        return await self.kube.patch_run_status(
            run.namespace, run.name, status_body(status), resource_version=rv
        )

    async def _log_tail(self, run: Run, pod: Mapping[str, Any] | None) -> str:
        if pod is None:
            return ""
        limit = self.settings.log_tail_bytes
        text = await self.kube.read_log(
            run.namespace, pod["metadata"]["name"], log_container(pod), limit_bytes=limit
        )
        return log_tail(text, limit)

    @staticmethod
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

    # --- after a run is final ---------------------------------------------------------------------------
    async def _prune(self, run: Run, listed: Sequence[Run] | None) -> None:
        """`listed`: the release's runs as this pass listed them (a run created since is pruned next time)."""
        if listed is None:
            bodies = await self.kube.list_runs(run.namespace, run.spec.release.name)
            listed = runs_from_bodies(bodies)
        runs = list(listed)
        uids = {r.name: r.uid for r in runs}
        for name in lifecycle.decide_prune(runs, limit=self.settings.history_limit, keep=run.name):
            await self.kube.delete_run(run.namespace, name)
            log.info("run.pruned", run=name, namespace=run.namespace)
            if self.artifacts is not None:  # at once, not only on the DELETED event a crash could miss
                from helm_e2e.artifacts.service import delete_artifacts

                await delete_artifacts(self.artifacts, run.namespace, name, uids.get(name, ""))
