"""The whole life of one E2ERun as one pure decision: what was observed in, typed actions out.

`decide_run(run, observed, policy)` is called by reconcile/executor.py on every pass. When it needs
to see more (log tails, a re-plan of tests whose pods are missing) it returns Fetch actions first and is
called again with the answers; otherwise it returns, in the order they must be applied:

    CreateHookObjects → CreateTest* → PatchStatus → PostEvent* → Delete* → Deliver* → PruneHistory → Requeue

The pass that makes a run final with a verdict first asks for FetchReleaseHistory (the release's runs), so
the final status patch carries `status.regression` (core/results/regressions.py) before any report reads it.

A final run that asks for a rollback (core/outcomes/rollback.py) settles it before its report goes out:
FetchReleaseHistory, then PatchStatus (the intent) → Rollback (helm) on one pass, so the e-mail can say
what happened.

A status patch carries the resourceVersion the decision was made on; when it conflicts, the executor
drops the rest and decides again on a fresh read, so nothing after it happens twice. Pods are deleted only
after the status that explains why was written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from helm_e2e.core.artifacts import rules
from helm_e2e.core.lifecycle import start_write
from helm_e2e.core.lifecycle.actions import Action as Action
from helm_e2e.core.lifecycle.actions import CreateHookObjects as CreateHookObjects
from helm_e2e.core.lifecycle.actions import CreateTest as CreateTest
from helm_e2e.core.lifecycle.actions import DeleteHookObjects as DeleteHookObjects
from helm_e2e.core.lifecycle.actions import DeleteJobs as DeleteJobs
from helm_e2e.core.lifecycle.actions import DeletePods as DeletePods
from helm_e2e.core.lifecycle.actions import Deliver as Deliver
from helm_e2e.core.lifecycle.actions import FetchEvents as FetchEvents
from helm_e2e.core.lifecycle.actions import FetchFluxTests as FetchFluxTests
from helm_e2e.core.lifecycle.actions import FetchLogs as FetchLogs
from helm_e2e.core.lifecycle.actions import FetchPlan as FetchPlan
from helm_e2e.core.lifecycle.actions import FetchReleaseHistory as FetchReleaseHistory
from helm_e2e.core.lifecycle.actions import FetchRollout as FetchRollout
from helm_e2e.core.lifecycle.actions import Observed as Observed
from helm_e2e.core.lifecycle.actions import PatchStatus as PatchStatus
from helm_e2e.core.lifecycle.actions import Policy as Policy
from helm_e2e.core.lifecycle.actions import PostEvent as PostEvent
from helm_e2e.core.lifecycle.actions import PruneHistory as PruneHistory
from helm_e2e.core.lifecycle.actions import Replanned as Replanned
from helm_e2e.core.lifecycle.actions import Requeue as Requeue
from helm_e2e.core.lifecycle.actions import Rollback as Rollback
from helm_e2e.core.lifecycle.actions import Rollout as Rollout
from helm_e2e.core.lifecycle.creation import create_actions
from helm_e2e.core.lifecycle.creation import decide_hook_cleanup as decide_hook_cleanup
from helm_e2e.core.lifecycle.end_runs import decide_end as decide_end
from helm_e2e.core.lifecycle.end_runs import decide_prune as decide_prune
from helm_e2e.core.lifecycle.end_runs import decide_superseded as decide_superseded
from helm_e2e.core.lifecycle.end_runs import may_supersede as may_supersede
from helm_e2e.core.lifecycle.gate import ROLLED_OUT, opened_by_pods, ready_condition
from helm_e2e.core.model import names
from helm_e2e.core.model.run import ReadinessMode, Run
from helm_e2e.core.model.run_status import Condition, RunPhase, RunStatus, TestPhase, TestResult
from helm_e2e.core.outcomes import outbox
from helm_e2e.core.outcomes import rollback as rollbacks
from helm_e2e.core.plan.build import PlannedTest
from helm_e2e.core.results import regressions
from helm_e2e.core.results import retries as attempts
from helm_e2e.core.results.run_tests import (
    Step,
    decide_next_step,
    get_condition,
    set_condition,
    tests_needing_diagnostics,
    tests_needing_logs,
)
from helm_e2e.core.sources import flux

Pod = Mapping[str, Any]
OUTBOX_FALLBACK_SECONDS = 1.0
GATE_POLL_SECONDS = 1.0  # a rollout that completes is noticed within this (pod events wake the run sooner)


# --- the decision ---
def decide_run(run: Run, observed: Observed, policy: Policy) -> list[Action]:
    if run.status.phase == RunPhase.REFUSED:
        return []  # not the operator's record (core/lifecycle/trust.py): no pod, no rollback, no report, ever
    if run.status.phase.is_final:
        return _decide_finished(run, observed, policy)
    return _decide_active(run, observed, policy)


def _missing_tests(run: Run, observed: Observed) -> list[str]:
    """Tests with no pod that still need one (not final, not refused by the API)."""
    recorded = {r.name: r for r in run.status.tests}
    return [
        t.name
        for t in run.spec.tests
        if t.source != names.TEST_SOURCE_FLUX  # Flux runs it: never created here
        and not observed.objects.exists(t)
        and t.name not in observed.refused
        and not (t.name in recorded and recorded[t.name].phase.is_final)
    ]


def _gated(run: Run) -> bool:
    """The readiness gate still stands: it is on, and the rollout was not seen complete yet."""
    ready = get_condition(run.status, names.COND_RELEASE_READY)
    return run.spec.readiness.mode == ReadinessMode.ROLLOUT and not (ready and ready.status == "True")


def _decide_gate(run: Run, observed: Observed) -> tuple[Condition, str]:
    """While gated: the ReleaseReady condition to record, and '' (open), 'wait' or 'fail'."""
    rollout, now = observed.rollout or Rollout(ready=True), observed.now
    waited = (now - (run.created_at or now)).total_seconds()
    # the wait counts against the run's deadline too (a spec from before the cap could ask for more)
    timeout = min(run.spec.readiness.timeout_seconds, run.spec.deadline_seconds)
    if rollout.ready:
        return ready_condition("True", names.EVENT_ROLLED_OUT, ROLLED_OUT, now), ""
    if rollout.failed or waited >= timeout:
        why = rollout.failed or f"not rolled out within {timeout}s: {rollout.pending}"
        return ready_condition("False", names.REASON_RELEASE_NOT_READY, why, now), "fail"
    return ready_condition("False", names.REASON_WAITING_FOR_ROLLOUT, rollout.pending, now), "wait"


def _decide_active(run: Run, observed: Observed, policy: Policy) -> list[Action]:
    current = attempts.current_pods(run, observed.objects.pods)  # an earlier attempt's pod is history
    observed = dataclasses.replace(observed, objects=dataclasses.replace(observed.objects, pods=current))
    before = run.status
    born = observed.objects.first_created()  # the pods say the gate opened and when the tests started
    run = start_write.started_from_pods(opened_by_pods(run, born), born, observed.now)
    missing = _missing_tests(run, observed)
    gated = _gated(run) and bool(run.spec.tests)
    if fetch := _fetches(run, observed, missing, gated=gated):
        return fetch
    plan = observed.plan.tests if observed.plan else {}
    unrunnable = {**observed.refused, **_unrunnable(missing, plan)}
    run = flux.with_flux_results(run, observed.flux or {})  # written with this pass's status, if it changes
    if gated:
        condition, verdict = _decide_gate(run, observed)
        status = run.status.model_copy(deep=True)
        status.conditions = set_condition(status.conditions, condition)
        if verdict == "wait":  # no test starts, no clock of theirs runs: look again soon
            return [*([PatchStatus(status)] if status != before else []), Requeue(GATE_POLL_SECONDS)]
        run = run.model_copy(update={"status": status})
        if verdict == "fail":
            unrunnable |= dict.fromkeys(missing, (names.REASON_RELEASE_NOT_READY, condition.message))
        # open: no Event, the ReleaseReady condition (reason RolledOut) says it (a request less per run)
    step = decide_next_step(
        run,
        observed.objects,
        pod_names=attempts.pod_names(run),
        logs=observed.logs or {},
        now=observed.now,
        unrunnable=unrunnable,
        events=observed.events,
    )
    step.status = rules.record(run.status, step.status, observed.artifacts)
    if step.finished and step.status.phase in regressions.VERDICTS:  # compared in the final patch
        if observed.history is None and not first_of_release(run):
            return [FetchReleaseHistory(revisions=False)]
        final = run.model_copy(update={"status": step.status})
        earlier = observed.history.runs if observed.history else ()
        step.status.regression = regressions.decide_regression(final, earlier)
    creatable = [t for name in step.create_tests if isinstance(t := plan.get(name), PlannedTest)]
    actions = create_actions(run, creatable, observed.plan or Replanned(tests={}), policy.collector)
    hold = start_write.hold_started_write(before, step, born, creating=bool(creatable), now=observed.now)
    if hold is not None:  # "started" goes out with the tests' first change (start_write.py)
        return [*actions, *_after_patch(run, step, policy, observed.history), Requeue(hold)]
    write = _with_first_outbox_step(run, step.status, observed.now, policy) if step.finished else None
    written = worth_writing(before, step.status)
    actions += [write or PatchStatus(step.status)] if written else []
    again = _look_again_after_final(run, write.status, observed, policy) if write and written else 0.0
    return actions + _after_patch(run, step, policy, observed.history, final_again=again)


def first_of_release(run: Run) -> bool:
    """A Helm release's first attempt of its first revision: no run of the release can be older, so its
    regression verdict, history pruning and report's history strip need no LIST of the release's runs."""
    release = run.spec.release
    return not may_supersede(
        revision=release.revision, attempt=run.spec.attempt or 1, trigger=release.trigger
    )


def worth_writing(before: RunStatus, after: RunStatus) -> bool:
    """Whether `after` says anything new: a Pending test whose pod only gained its start time is not (it is
    read from the pod again on every pass and written with the next change: one status write less per
    test). Anything else is, a test's Running above all (a Running test whose pod vanishes is PodLost)."""
    if after == before:
        return False
    old = {t.name: t for t in before.tests}

    def folded(test: TestResult) -> TestResult:
        prev = old.get(test.name)
        if prev is None or test.phase != TestPhase.PENDING or prev.phase != TestPhase.PENDING:
            return test
        return prev if test.model_copy(update={"started_at": prev.started_at}) == prev else test

    return after.model_copy(update={"tests": [folded(t) for t in after.tests]}) != before


def _look_again_after_final(run: Run, written: RunStatus, observed: Observed, policy: Policy) -> float:
    """When the pass after the final write is due: at once (the report, on a fresh read), unless that write
    left nothing to report (no e-mail, no webhook to send): then at the pods' TTL, all that pass would have
    decided (a pass less per run)."""
    if not outbox.is_fully_reported(written):
        return 0.0
    match decide_pod_cleanup(run.model_copy(update={"status": written}), observed, policy):
        case [Requeue(after=after)]:
            return after
    return 0.0  # the TTL is up already: the pass deletes the pods on a fresh read


def _with_first_outbox_step(run: Run, final: RunStatus, now: datetime, policy: Policy) -> PatchStatus | None:
    """The final status with the outbox's first write in it (the intents, Sending, or why no e-mail goes
    out): one status write less per run. Not when a rollback comes first (the report waits for it)."""
    ended = run.model_copy(update={"status": final})
    if not rollbacks.settled(ended):
        return None
    return next((a for a in decide_outbox(ended, now, policy) if isinstance(a, PatchStatus)), None)


def _fetches(run: Run, observed: Observed, missing: Sequence[str], *, gated: bool) -> list[Action]:
    """What the decision needs to see first: log tails, the plan of missing tests, the rollout."""
    fetch: list[Action] = []
    if observed.logs is None and (need := tests_needing_logs(run, observed.objects)):
        fetch.append(FetchLogs(tuple(need)))
    if observed.events is None and (
        failing := tests_needing_diagnostics(run, observed.objects, now=observed.now)
    ):
        fetch.append(FetchEvents(tuple(failing)))
    if observed.plan is None and (missing or gated):
        fetch.append(FetchPlan(tuple(missing)))
    if gated and observed.rollout is None:
        fetch.append(FetchRollout())
    if observed.flux is None and flux.pending_flux_tests(run):
        fetch.append(FetchFluxTests())
    return fetch


def _unrunnable(missing: Sequence[str], plan: Mapping[str, PlannedTest | str]) -> dict[str, tuple[str, str]]:
    """Missing tests that will never get a pod, and why: not planned, a refused hook, the pod policy."""
    out: dict[str, tuple[str, str]] = {}
    for name in missing:
        planned = plan.get(name, "the test is no longer part of the plan")
        if isinstance(planned, str):
            out[name] = (names.REASON_NOT_PLANNED, planned)
        elif planned.blocked:
            out[name] = (names.REASON_HOOK_REFUSED, planned.blocked)
        elif planned.policy_violation:
            out[name] = (names.REASON_POLICY_VIOLATION, planned.policy_violation)
    return out


def _after_patch(
    run: Run, step: Step, policy: Policy, history: rollbacks.History | None, *, final_again: float = 0.0
) -> list[Action]:
    """Events, deletions (after the status that explains them), and what comes next; pruning reuses the
    runs this pass listed for the regression verdict, if it did."""
    actions: list[Action] = [PostEvent(e.type, e.reason, e.message) for e in step.events]
    actions += [DeletePods(tuple(step.delete_pods))] if step.delete_pods else []
    actions += [DeleteJobs(tuple(step.delete_jobs))] if step.delete_jobs else []
    if not step.finished:
        return [*actions, Requeue(policy.resync_seconds)]
    if cleanup := decide_hook_cleanup(run.spec.hook_objects):
        actions.append(DeleteHookObjects(tuple(cleanup)))
    listed = history.runs if history else (() if first_of_release(run) else None)
    prune = PruneHistory(run.spec.release.name, runs=listed, limit=policy.history_limit)
    return [*actions, prune, Requeue(final_again)]  # the report on a fresh read, or the pods' TTL


def _decide_finished(run: Run, observed: Observed, policy: Policy) -> list[Action]:
    """A final run: its unfinished pods and Jobs go at once, the report goes out once, finished pods at
    the TTL."""
    objects, tests = observed.objects, run.spec.tests
    unfinished_pods = tuple(
        objects.pods[t.name]["metadata"]["name"]
        for t in tests
        if t.kind == "Pod" and objects.exists(t) and not objects.finished(t)
    )
    unfinished_jobs = tuple(
        objects.jobs[t.name]["metadata"]["name"]
        for t in tests
        if t.kind == "Job" and objects.exists(t) and not objects.finished(t)
    )
    actions: list[Action] = [DeletePods(unfinished_pods)] if unfinished_pods else []
    actions += [DeleteJobs(unfinished_jobs)] if unfinished_jobs else []
    if not rollbacks.settled(run):  # the report waits for the rollback's outcome, so it can say it
        if observed.history is None:
            return [FetchReleaseHistory(descriptions=run.status.rollback is not None)]
        return [*actions, *decide_rollback_actions(run, observed.history, observed.now), Requeue(0.0)]
    report = decide_outbox(run, observed.now, policy)
    if any(isinstance(a, PatchStatus) for a in report):
        # one status write per pass: the rest on a fresh read. The run's own watch event wakes it at once;
        # the requeue is the fallback, not 0 (a CRD that prunes the field would otherwise make it spin)
        return [*actions, *report, Requeue(OUTBOX_FALLBACK_SECONDS)]
    ttl = decide_pod_cleanup(run, observed, policy)
    waits = [a.after for a in (*report, *ttl) if isinstance(a, Requeue)]
    others = [a for a in (*report, *ttl) if not isinstance(a, Requeue)]
    return actions + others + ([Requeue(min(waits))] if waits else [])


def decide_rollback_actions(run: Run, history: rollbacks.History, now: datetime) -> list[Action]:
    """The status first (the decision, or the intent before helm runs), then its Event or the helm call."""
    step = rollbacks.decide_rollback_step(run, history, now=now)
    if step.status is None:
        return []
    actions: list[Action] = [PatchStatus(step.status, rollback_outcome=step.result)]
    if step.event is not None:
        actions.append(PostEvent(step.event[0], names.EVENT_ROLLED_BACK, step.event[1]))
    if step.call is not None:
        actions.append(Rollback(step.call, step.status))
    return actions


def outbox_policy(policy: Policy) -> outbox.OutboxPolicy:
    return outbox.OutboxPolicy(
        mail_to=policy.mail_to,
        smtp_enabled=policy.smtp_enabled,
        report_cancelled=policy.report_cancelled,
        webhooks=policy.webhooks,
        mail_retry_base_seconds=policy.mail_retry_base_seconds,
        webhook_retry_base_seconds=policy.webhook_retry_base_seconds,
        mail_allowed_domains=policy.mail_allowed_domains,
    )


def decide_outbox(run: Run, now: datetime, policy: Policy) -> list[Action]:
    """The report's outbox (core/outcomes/outbox.py), every channel at once: the intents (and the e-mail's
    skip) in one status write, or one Deliver per channel in Sending; the outcomes are recorded by the shell
    with `outbox.record_outcome`."""
    step = outbox.decide_outbox(run, now=now, policy=outbox_policy(policy))
    wait = [Requeue(step.wait)] if step.wait is not None else []
    if step.write is not None:
        return [PatchStatus(step.write, mail_outcome=step.skipped), *wait]
    mail = outbox.MAIL
    return [*(Deliver(c, step.recipients if c == mail else ()) for c in step.send), *wait]


def decide_pod_cleanup(run: Run, observed: Observed, policy: Policy) -> list[Action]:
    """Delete the test pods `podTTLSeconds` after completion (the results are already in the status)."""
    if run.status.pods_deleted_at or not run.status.completed_at:
        return []
    wait = (
        run.status.completed_at + timedelta(seconds=policy.pod_ttl_seconds) - observed.now
    ).total_seconds()
    if wait > 0:
        return [Requeue(wait)]
    pods = (
        tuple(p["metadata"]["name"] for p in observed.objects.pods.values()) + observed.objects.earlier_pods
    )
    jobs = tuple(j["metadata"]["name"] for j in observed.objects.jobs.values())
    status = run.status.model_copy(update={"pods_deleted_at": observed.now})
    deletes: list[Action] = [DeletePods(pods)] if pods else []
    deletes += [DeleteJobs(jobs)] if jobs else []
    return [*deletes, PatchStatus(status)]
