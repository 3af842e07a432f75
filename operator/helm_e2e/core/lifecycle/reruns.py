"""Re-runs of a deployed revision, on demand or on a schedule (pure decisions).

A re-run is one more E2ERun of the release's deployed revision, an *attempt*: `shop-12` is the revision's
own run, `shop-12-r2`, `shop-12-r3` the next ones (core.naming.build_attempt_run_name), each with
`spec.attempt` and `spec.request{trigger, token}`. The token is the idempotence key: a request whose token
some run of the release already carries was done, whoever asks again (a repeated annotation event, an
operator restart that lists the annotated run once more, the same schedule slot after `kill -9`).
The attempt number is the highest of the revision plus one, so two different requests racing for the same
name meet at the API (409) and the loser decides again.

An Argo CD application's run (core.sources.argocd) is re-run the same way, of the application's latest sync
(its history id as the revision, `web-a3-r2`), planned from the Application again, never from the run: only
in the application's destination namespace, only when the operator's own run of that sync (same Application
uid) exists, and — on demand — only when the annotated run is one of those.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from helm_e2e.core.lifecycle.trust import refuse_run
from helm_e2e.core.model import names
from helm_e2e.core.model.dns_names import build_attempt_run_name
from helm_e2e.core.model.release import ManagedBy
from helm_e2e.core.model.run import RequestTrigger, Run, RunRequest
from helm_e2e.core.plan.build import PlannedTest
from helm_e2e.core.sources import argocd

RERUN_ANNOTATION = f"{names.GROUP}/rerun"
MAX_TOKEN = 253


@dataclass(frozen=True)
class NewAttempt:
    name: str
    attempt: int


def attempt_of(run: Run) -> int:
    return run.spec.attempt or 1


def order_key(run: Run) -> tuple[int, int]:
    """Runs of a release, oldest first: by revision, then attempt."""
    return run.spec.release.revision, attempt_of(run)


def newest_run(runs: Sequence[Run], *, revision: int | None = None) -> Run | None:
    """The newest attempt of `revision` (of any revision when None)."""
    chosen = [r for r in runs if revision is None or r.spec.release.revision == revision]
    return max(chosen, key=order_key, default=None)


def rerun_token(annotations: Mapping[str, str]) -> str:
    """The helm-e2e.dev/rerun annotation's token ("" = no request)."""
    return (annotations.get(RERUN_ANNOTATION) or "").strip()[:MAX_TOKEN]


def is_done(runs: Sequence[Run], token: str) -> bool:
    return any(r.spec.request is not None and r.spec.request.token == token for r in runs)


def decide_new_attempt(
    runs: Sequence[Run],
    *,
    release: str,
    revision: int,
    request: RunRequest,
    naming: Callable[[str, int, int], str] = build_attempt_run_name,
) -> NewAttempt | None:
    """The next attempt of `revision`, or None: the request was already done, or (for a schedule) the
    revision's newest run is still active and a slot never stacks runs (as a CronJob's Forbid)."""
    if is_done(runs, request.token):
        return None
    newest = newest_run(runs, revision=revision)
    if request.trigger == RequestTrigger.SCHEDULE and newest and not newest.status.phase.is_final:
        return None
    attempt = attempt_of(newest) + 1 if newest else 1
    return NewAttempt(naming(release, revision, attempt), attempt)


def deployed_revision(secret_labels: Sequence[Mapping[str, str]]) -> int | None:
    """The revision Helm marks `deployed` (the highest, should there be more than one)."""
    versions = [
        int(v)
        for lab in secret_labels
        if lab.get(names.HELM_STATUS_LABEL) == "deployed"
        and (v := lab.get(names.HELM_VERSION_LABEL, "")).isdigit()
    ]
    return max(versions, default=None)


def suite_tests(tests: Sequence[PlannedTest], suite: str) -> list[PlannedTest]:
    """A scheduled check runs the tests of its own suite only (not the hooks, not other suites)."""
    return [t for t in tests if t.source == f"suite/{suite}"]


@dataclass(frozen=True)
class ApplicationAttempt:
    """A re-run request of an Argo CD application: `attempt` of `sync`, or nothing and why."""

    sync: argocd.Sync | None = None
    attempt: NewAttempt | None = None
    why: str = ""


def application_runs(runs: Sequence[Run], sync: argocd.Sync) -> list[Run]:
    """The runs the operator made of this very Application (by uid) in its destination namespace."""
    return [
        r
        for r in runs
        if (m := argocd.application_of(r)) is not None
        and (m.name, m.namespace) == (sync.app, sync.app_namespace)
        and r.spec.release.secret_uid == sync.uid
        and r.namespace == sync.namespace
        and refuse_run(r) is None
    ]


def decide_application_attempt(
    app: Mapping[str, Any], *, namespace: str, runs: Sequence[Run], request: RunRequest, annotated: str = ""
) -> ApplicationAttempt:
    """One more run of the application's latest sync for `request` (runs: those of its name in `namespace`;
    `annotated`: the run a re-run was asked on, "" for a schedule), or why not."""
    sync = argocd.latest_sync(app)
    if sync is None:
        return ApplicationAttempt(why="no successful in-cluster sync")
    if sync.namespace != namespace:
        return ApplicationAttempt(sync, why=f"the application deploys into {sync.namespace!r}, not here")
    own = application_runs(runs, sync)
    if annotated and annotated not in {r.name for r in own}:
        return ApplicationAttempt(sync, why=f"{annotated} is not the operator's run of this application")
    if is_done(runs, request.token):
        return ApplicationAttempt(sync, why="done already")
    if not any(r.spec.release.revision == sync.history_id for r in own):
        return ApplicationAttempt(sync, why=f"sync {sync.history_id} is not tested yet")
    attempt = decide_new_attempt(
        own,
        release=sync.app,
        revision=sync.history_id,
        request=request,
        naming=argocd.build_attempt_run_name,
    )
    return ApplicationAttempt(sync, attempt, "" if attempt else "its newest run is still going")


def scheduled_applications(runs: Sequence[Run]) -> list[ManagedBy]:
    """The Applications a namespace's runs were planned from (each once): what a schedule re-verifies."""
    found: dict[tuple[str, str], ManagedBy] = {}
    for run in runs:
        managed = argocd.application_of(run)
        if managed is not None and refuse_run(run) is None:
            found.setdefault((managed.namespace, managed.name), managed)
    return list(found.values())
