"""The imperative shell: turns watch events into runs, pods, status, Events and e-mails.

Every method is safe to repeat after `kill -9`: names are deterministic, creates adopt on 409, status
patches carry the resourceVersion they were computed from (a conflict just re-queues the run).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from kubernetes.client.exceptions import ApiException

from . import errors
from .adapters import metrics
from .adapters.kube import Kube, ObjectRef
from .adapters.mail import send_email
from .config import Settings
from .core import plan as planning
from .core import release as releases
from .core import report as reporting
from .core.models import Condition, Release, Run, RunPhase, RunStatus, Suite, TestPhase
from .core.naming import build_pod_name, build_run_name
from .core.results import (
    decide_next_step,
    end_run,
    get_condition,
    log_container,
    log_tail,
    set_condition,
    tests_needing_logs,
)
from .core.runbody import API_VERSION, build_run_body, run_from_body, status_body
from .suites import record_suite_problems
from .workqueue import WorkQueue

log = structlog.get_logger(__name__)
RunKey = tuple[str, str]  # (namespace, name)
EMAIL_DONE_REASONS = {"Sent", "Failed", "Disabled", "OnlyOnFailure", "NoRecipients", "NotReported"}


def run_ref(run: Run) -> ObjectRef:
    return ObjectRef(
        kind="E2ERun", api_version=API_VERSION, namespace=run.namespace, name=run.name, uid=run.uid
    )


class Controller:
    def __init__(
        self, *, settings: Settings, kube: Kube, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.settings = settings
        self.kube = kube
        self.now = clock or (lambda: datetime.now(UTC))
        self.queue: WorkQueue[RunKey] = WorkQueue(self.reconcile)
        self._warned: set[tuple[str, str, str]] = set()

    # --- Helm release secrets ------------------------------------------------------------------------
    async def on_release_secret(self, event_type: str | None, secret: Mapping[str, Any]) -> None:
        meta = secret.get("metadata", {})
        labels = meta.get("labels") or {}
        namespace, release_name, status = (
            meta.get("namespace", ""),
            labels.get("name", ""),
            labels.get("status"),
        )
        if event_type == "DELETED" or status in ("uninstalling", "uninstalled"):
            await self.cancel_if_uninstalled(namespace, release_name)
            return
        if status != "deployed":  # pending-*, superseded, failed: nothing to run
            return
        try:
            release = releases.decode_release_secret(secret)
        except errors.ReleaseDecodeError as e:
            await self._warn_corrupt_secret(meta, str(e))
            return
        if not self._recent(release):
            return
        await self.ensure_run(release)

    def _recent(self, release: Release) -> bool:
        """Only revisions deployed within the grace period get a run: no flood on first install."""
        deployed = release.last_deployed or release.first_deployed
        if deployed is None:
            return False
        return self.now() - deployed <= timedelta(seconds=self.settings.startup_grace_seconds)

    async def _warn_corrupt_secret(self, meta: Mapping[str, Any], message: str) -> None:
        key = (meta.get("namespace", ""), meta.get("name", ""), meta.get("resourceVersion", ""))
        if key in self._warned:
            return
        self._warned.add(key)
        metrics.RELEASE_DECODE_ERRORS.inc()
        log.warning("release.corrupt", namespace=key[0], secret=key[1], error=message)
        ref = ObjectRef(
            kind="Secret", api_version="v1", namespace=key[0], name=key[1], uid=meta.get("uid", "")
        )
        await self.kube.post_event(ref, type="Warning", reason="ReleaseDecodeFailed", message=message)

    async def ensure_run(self, release: Release) -> None:
        name = build_run_name(release.name, release.revision)
        if await self.kube.get_run(release.namespace, name) is not None:
            return  # already planned: operator restart, `helm test`, or a status-only rewrite
        plan = await self._plan(release)
        if not plan.tests:
            log.info(
                "run.skipped", release=release.name, revision=release.revision, reason="no tests planned"
            )
            return
        spec = planning.build_run_spec(release, plan, deadline_seconds=self.settings.run_deadline_seconds)
        created = await self.kube.create_run(build_run_body(spec, name=name, namespace=release.namespace))
        if created is None:
            return  # someone else created it first: their run, their pods
        run = run_from_body(created)
        metrics.RUNS_CREATED.labels(trigger=release.trigger.value).inc()
        if release.last_deployed:
            metrics.TRIGGER_LATENCY.observe(max(0.0, (self.now() - release.last_deployed).total_seconds()))
        log.info(
            "run.created",
            run=run.name,
            namespace=run.namespace,
            tests=len(plan.tests),
            trigger=release.trigger.value,
            image_tag=spec.release.image_tag,
        )
        await self._create_pods(run, plan.tests)
        tests = ", ".join(f"{t.name} ({t.source})" for t in plan.tests)
        await self.kube.post_event(run_ref(run), type="Normal", reason="Planned", message=f"tests: {tests}")
        for note in plan.hook_notes:
            await self.kube.post_event(run_ref(run), type="Warning", reason="HookNote", message=note)
        await self.supersede_older_runs(run)
        self.queue.add((run.namespace, run.name))

    async def _plan(self, release: Release) -> planning.Plan:
        raw = await self.kube.list_suites(release.namespace)
        suites = [
            Suite(
                name=s["metadata"]["name"],
                namespace=release.namespace,
                generation=s["metadata"].get("generation", 0),
                spec=s.get("spec") or {},
            )
            for s in raw
        ]
        plan = planning.build_plan(
            release,
            suites=suites,
            image_tag_values_path=self.settings.image_tag_values_path,
            run_chart_hooks=self.settings.run_chart_hooks,
            default_timeout_seconds=self.settings.default_test_timeout_seconds,
        )
        await record_suite_problems(self.kube, suites, plan, now=self.now())
        return plan

    async def _create_pods(self, run: Run, tests: Sequence[planning.PlannedTest]) -> None:
        await asyncio.gather(
            *(self.kube.create_pod(planning.build_pod_manifest(run=run, test=t)) for t in tests)
        )

    # --- lifecycle: supersede and cancel ---------------------------------------------------------------
    async def supersede_older_runs(self, run: Run) -> None:
        revision = run.spec.release.revision
        for body in await self.kube.list_runs(run.namespace, run.spec.release.name):
            older = run_from_body(body)
            if older.spec.release.revision < revision and not older.status.phase.is_final:
                await self._end(
                    older,
                    body,
                    phase=RunPhase.SUPERSEDED,
                    reason="Superseded",
                    message=f"superseded by revision {revision}",
                )

    async def cancel_if_uninstalled(self, namespace: str, release: str) -> None:
        if not release or await self.kube.count_release_secrets(namespace, release) > 0:
            return  # history pruning (--history-max) removes old secrets of a release that still exists
        for body in await self.kube.list_runs(namespace, release):
            run = run_from_body(body)
            if not run.status.phase.is_final:
                await self._end(
                    run,
                    body,
                    phase=RunPhase.CANCELLED,
                    reason="Uninstalled",
                    message="the release was uninstalled",
                )

    async def _end(
        self, run: Run, body: Mapping[str, Any], *, phase: RunPhase, reason: str, message: str
    ) -> None:
        status = end_run(run, phase=phase, reason=reason, message=message, now=self.now())
        if not await self._patch_status(run, body, status_body(status)):
            self.queue.add((run.namespace, run.name))  # changed under us: the reconcile will look again
            return
        for pod in await self.kube.list_run_pods(run.namespace, run.name):
            await self.kube.delete_pod(run.namespace, pod["metadata"]["name"])
        await self.kube.post_event(run_ref(run), type="Normal", reason=reason, message=message)
        log.info("run.ended", run=run.name, namespace=run.namespace, phase=phase.value, reason=reason)
        self.queue.add((run.namespace, run.name))

    async def _patch_status(self, run: Run, body: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
        """Patch with the resourceVersion the status was computed from; False on a conflict."""
        rv = body.get("metadata", {}).get("resourceVersion")
        try:
            await self.kube.patch_run_status(run.namespace, run.name, status, resource_version=rv)
        except ApiException as e:
            if e.status == 409:
                return False
            raise
        return True

    # --- the per-run reconcile ---------------------------------------------------------------------
    async def reconcile(self, key: RunKey) -> float | None:
        body = await self.kube.get_run(*key)
        if body is None:
            return None
        run = run_from_body(body)
        if run.status.phase.is_final:
            return await self.finish(run, body)
        pods = {
            p["metadata"].get("labels", {}).get("helm-e2e.dev/test", ""): p
            for p in await self.kube.list_run_pods(run.namespace, run.name)
        }
        lost = await self._recreate_missing_pods(run, pods)
        logs = {name: await self._log_tail(run, pods[name]) for name in tests_needing_logs(run, pods)}
        pod_names = {t.name: build_pod_name(run.name, t.name) for t in run.spec.tests}
        step = decide_next_step(run, pods, pod_names=pod_names, logs=logs, now=self.now(), lost=lost)
        for pod_name in step.delete_pods:
            await self.kube.delete_pod(run.namespace, pod_name)
        if step.changed and not await self._patch_status(run, body, status_body(step.status)):
            return 0.2
        self._log_test_transitions(run, step.status)
        for event in step.events:
            await self.kube.post_event(
                run_ref(run), type=event.type, reason=event.reason, message=event.message
            )
        if step.finished:
            run = run.model_copy(update={"status": step.status})
            self._observe_finished(run)
            log.info(
                "run.completed",
                run=run.name,
                namespace=run.namespace,
                phase=run.status.phase.value,
                passed=run.status.summary.passed,
                failed=run.status.summary.failed,
            )
            await self.prune_history(run)
            return 0.0  # finish (mail, pod TTL) on a fresh read
        return self.settings.resync_seconds

    async def _recreate_missing_pods(self, run: Run, pods: Mapping[str, Any]) -> dict[str, str]:
        """After a crash between creating the run and its pods, plan again and create what is missing."""
        recorded = {r.name: r for r in run.status.tests}
        missing = [
            t.name
            for t in run.spec.tests
            if t.name not in pods and not (t.name in recorded and recorded[t.name].phase != TestPhase.PENDING)
        ]
        if not missing or run.status.phase != RunPhase.PENDING:
            return {}
        ref = run.spec.release
        secret = await self.kube.get_secret(ref.namespace, f"sh.helm.release.v1.{ref.name}.v{ref.revision}")
        if secret is None:
            return dict.fromkeys(missing, "the Helm release secret is gone; the test cannot be planned again")
        try:
            plan = await self._plan(releases.decode_release_secret(secret))
        except errors.ReleaseDecodeError as e:
            return dict.fromkeys(missing, str(e))
        by_name = {t.name: t for t in plan.tests}
        await self._create_pods(run, [by_name[n] for n in missing if n in by_name])
        return {n: "the test is no longer part of the plan" for n in missing if n not in by_name}

    async def _log_tail(self, run: Run, pod: Mapping[str, Any]) -> str:
        text = await self.kube.read_log(
            run.namespace,
            pod["metadata"]["name"],
            log_container(pod),
            limit_bytes=self.settings.log_tail_bytes,
        )
        return log_tail(text, self.settings.log_tail_bytes)

    @staticmethod
    def _log_test_transitions(run: Run, new: RunStatus) -> None:
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

    def _observe_finished(self, run: Run) -> None:
        metrics.RUNS.labels(phase=run.status.phase.value).inc()
        if run.status.started_at and run.status.completed_at:
            metrics.RUN_DURATION.observe((run.status.completed_at - run.status.started_at).total_seconds())
        for test in run.status.tests:
            metrics.TESTS.labels(phase=test.phase.value).inc()

    # --- after a run is final: e-mail outbox, pod TTL --------------------------------------------------
    async def finish(self, run: Run, body: Mapping[str, Any]) -> float | None:
        retry = await self.deliver_report(run, body)
        if retry == 0.0:
            return 0.2  # status changed under us
        ttl = await self.cleanup_pods(run)
        delays = [d for d in (retry, ttl) if d is not None]
        return min(delays) if delays else None

    async def deliver_report(self, run: Run, body: Mapping[str, Any]) -> float | None:
        """The outbox: record the intent, send with a deterministic Message-ID, record the outcome."""
        sent = get_condition(run.status, "EmailSent")
        if sent is not None and sent.reason in EMAIL_DONE_REASONS:
            return None
        due = run.status.email_next_attempt_at
        if due is not None and (wait := (due - self.now()).total_seconds()) > 0:
            return wait  # backing off: a status event woke us early
        decision = reporting.decide_mail(
            run, mail_to=self.settings.mail_to, report_cancelled=self.settings.mail_report_cancelled
        )
        if not self.settings.smtp_enabled or not decision.send:
            reason = "Disabled" if not self.settings.smtp_enabled else decision.reason
            message = "SMTP is not configured" if reason == "Disabled" else f"not sent: {reason}"
            log.info("mail.skipped", run=run.name, namespace=run.namespace, reason=reason)
            metrics.EMAILS.labels(result=reason).inc()
            return await self._record_email(run, body, "False", reason, message)
        if sent is None or sent.reason != "Sending":
            if await self._record_email(run, body, "Unknown", "Sending", "delivery in progress") == 0.0:
                return 0.0
            body = await self.kube.get_run(run.namespace, run.name) or body
        report = reporting.render_report(run, cluster=self.settings.cluster_name)
        message_obj = reporting.build_email(
            report, sender=self.settings.mail_from, recipients=decision.recipients
        )
        try:
            await send_email(message_obj, settings=self.settings)
        except errors.MailError as e:
            return await self._email_failed(run, body, e)
        metrics.EMAILS.labels(result="Sent").inc()
        log.info("mail.sent", run=run.name, namespace=run.namespace, recipients=len(decision.recipients))
        return await self._record_email(
            run, body, "True", "Sent", f"sent to {len(decision.recipients)} recipient(s)"
        )

    async def _email_failed(self, run: Run, body: Mapping[str, Any], error: errors.MailError) -> float | None:
        attempts = run.status.email_attempts + 1
        metrics.EMAILS.labels(result="Failed" if error.permanent else "Retrying").inc()
        log.warning(
            "mail.failed",
            run=run.name,
            namespace=run.namespace,
            permanent=error.permanent,
            attempts=attempts,
            error=str(error),
        )
        reason = "Failed" if error.permanent else "Retrying"
        delay = float(min(300.0, self.settings.smtp_retry_base_seconds * 2 ** min(attempts, 8)))
        result = await self._record_email(
            run,
            body,
            "False",
            reason,
            f"attempt {attempts}: {error}",
            attempts=attempts,
            next_attempt_at=None if error.permanent else self.now() + timedelta(seconds=delay),
        )
        if error.permanent or result == 0.0:
            return result
        return delay

    async def _record_email(
        self,
        run: Run,
        body: Mapping[str, Any],
        status: str,
        reason: str,
        message: str,
        *,
        attempts: int | None = None,
        next_attempt_at: datetime | None = None,
    ) -> float | None:
        new = run.status.model_copy(deep=True)
        new.conditions = set_condition(
            new.conditions,
            Condition(
                type="EmailSent",
                status=status,
                reason=reason,
                message=message,
                last_transition_time=self.now(),
            ),
        )
        if attempts is not None:
            new.email_attempts = attempts
        new.email_next_attempt_at = next_attempt_at
        if not await self._patch_status(run, body, status_body(new)):
            return 0.0
        return None

    async def cleanup_pods(self, run: Run) -> float | None:
        """Delete the test pods `podTTLSeconds` after completion (results are already in the status)."""
        if run.status.pods_deleted_at or not run.status.completed_at:
            return None
        due = run.status.completed_at + timedelta(seconds=self.settings.pod_ttl_seconds)
        wait = (due - self.now()).total_seconds()
        if wait > 0:
            return wait
        for pod in await self.kube.list_run_pods(run.namespace, run.name):
            await self.kube.delete_pod(run.namespace, pod["metadata"]["name"])
        body = await self.kube.get_run(run.namespace, run.name)
        if body is None:
            return None
        fresh = run_from_body(body)
        status = fresh.status.model_copy(update={"pods_deleted_at": self.now()})
        await self._patch_status(fresh, body, status_body(status))
        log.info("run.pods_deleted", run=run.name, namespace=run.namespace)
        return None

    async def prune_history(self, run: Run) -> None:
        """Keep only the newest `historyLimit` runs of a release; active runs are never deleted."""
        runs = [run_from_body(b) for b in await self.kube.list_runs(run.namespace, run.spec.release.name)]
        runs.sort(key=lambda r: r.spec.release.revision, reverse=True)
        for old in runs[self.settings.history_limit :]:
            if old.status.phase.is_final and old.name != run.name:
                await self.kube.delete_run(old.namespace, old.name)
                log.info("run.pruned", run=old.name, namespace=old.namespace)
