"""The JSON of `/api/v1/` (pure): rows of the runs list, one run's page, a release's history.

Every builder takes parsed runs (core.models.Run, from core.runbody) and returns plain dicts, never mutating
what it is given. Strings that come from the cluster are cut to a bound here (a run body is written by
whoever may create E2ERuns); the pages render them as text, never as markup.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from helm_e2e.core.lifecycle import reruns
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import RunPhase, TestPhase

MAX_TEXT = 2_000  # characters of a message or reason
MAX_LOG = 64 * 1024  # characters of a log tail on the run page
MAX_EVENTS = 100  # Events of a run shown
MAX_FLAKY = 50  # rows of the flaky-tests table
MAX_REGRESSIONS = 50  # runs listed with their regressions
MAX_KEYS = 50  # failure keys per regression list


def clip(value: object, limit: int = MAX_TEXT) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def run_seconds(run: Run) -> float | None:
    """The run's wall time, started to completed; None while it runs or when unknown."""
    started, completed = run.status.started_at, run.status.completed_at
    if started is None or completed is None:
        return None
    took = (completed - started).total_seconds()
    return took if took >= 0 else None


def pass_rate(run: Run) -> float | None:
    """Passed tests over all tests (0..1); None for a run without tests."""
    s = run.status.summary
    return round(s.passed / s.total, 4) if s.total > 0 else None


def _managed_by(run: Run) -> str | None:
    """Who deploys the release, when not helm by hand: `HelmRelease ns/name` (Flux)."""
    m = run.spec.release.managed_by
    return clip(f"{m.kind} {m.namespace}/{m.name}", 300) if m is not None else None


def build_run_row(run: Run) -> dict[str, Any]:
    """One row of the runs list (and of the live updates)."""
    release, s = run.spec.release, run.status.summary
    return {
        "name": clip(run.name, 253),
        "namespace": clip(run.namespace, 63),
        "release": clip(release.name, 253),
        "revision": release.revision,
        "attempt": reruns.attempt_of(run),
        "trigger": release.trigger.value,
        "request": run.spec.request.trigger.value if run.spec.request else None,
        "chart": clip(f"{release.chart}-{release.chart_version}", 300),
        "appVersion": clip(release.app_version, 200),
        "imageTag": clip(release.image_tag, 200),
        "commit": clip(release.commit or "", 100),  # the deploy's git revision, where it carries one
        "managedBy": _managed_by(run),
        "phase": run.status.phase.value,
        "summary": {
            "total": s.total,
            "passed": s.passed,
            "failed": s.failed,
            "errored": s.errored,
            "flaky": s.flaky,
        },
        "createdAt": _iso(run.created_at),
        "startedAt": _iso(run.status.started_at),
        "completedAt": _iso(run.status.completed_at),
        "durationSeconds": run_seconds(run),
        "passRate": pass_rate(run),
        "message": clip(run.status.message),
    }


def _test_detail(test: Any) -> dict[str, Any]:
    body: dict[str, Any] = test.model_dump(by_alias=True, exclude_none=True, mode="json")
    for key in ("logTail", "failedLogTail"):
        if key in body:
            body[key] = clip(body[key], MAX_LOG)
    for key in ("reason", "message", "artifactsMessage"):
        if key in body:
            body[key] = clip(body[key])
    return body


def build_event(body: Mapping[str, Any]) -> dict[str, Any]:
    """One Kubernetes Event about the run, as the run page lists it."""
    source = body.get("source") or {}
    return {
        "type": clip(body.get("type"), 20),
        "reason": clip(body.get("reason"), 200),
        "message": clip(body.get("message")),
        "count": body.get("count") if isinstance(body.get("count"), int) else None,
        "lastSeen": clip(
            body.get("lastTimestamp") or body.get("eventTime") or body.get("firstTimestamp") or "", 40
        ),
        "source": clip(source.get("component") or body.get("reportingComponent") or "", 200),
    }


def build_run_detail(run: Run, events: Sequence[Mapping[str, Any]] | None) -> dict[str, Any]:
    """The run page: the row, every test (attempts, exit codes, reasons, pytest counts and first failures,
    log tails, diagnostics, artifacts), conditions, notifications, rollback, regression and Events
    (`events` None: the user may not list Events here)."""
    status = run.status.model_dump(by_alias=True, exclude_none=True, mode="json")
    ordered = sorted(events or [], key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    return {
        "run": build_run_row(run),
        "spec": {
            "tests": [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in run.spec.tests],
            "onFailure": run.spec.on_failure.value if run.spec.on_failure else None,
            "deployedAt": _iso(run.spec.release.deployed_at),
            "report": run.spec.report.model_dump(by_alias=True, mode="json"),
        },
        "tests": [_test_detail(t) for t in run.status.tests],
        "conditions": status.get("conditions", []),
        "notifications": status.get("notifications", []),
        "rollback": status.get("rollback"),
        "regression": status.get("regression"),
        "events": None if events is None else [build_event(e) for e in ordered[-MAX_EVENTS:]],
        "hasArtifacts": any(t.artifacts for t in run.status.tests),
    }


def _newest_per_revision(runs: Iterable[Run]) -> list[Run]:
    """The newest attempt of each revision, newest revision first."""
    newest: dict[int, Run] = {}
    for run in runs:
        kept = newest.get(run.spec.release.revision)
        if kept is None or reruns.order_key(run) > reruns.order_key(kept):
            newest[run.spec.release.revision] = run
    return [newest[r] for r in sorted(newest, reverse=True)]


def build_flaky_table(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Tests that passed only on a retry: in how many runs, out of how many runs that had the test."""
    seen: Counter[str] = Counter()
    flaky: Counter[str] = Counter()
    retried: Counter[str] = Counter()
    last: dict[str, int] = {}
    for run in runs:
        for test in run.status.tests:
            seen[test.name] += 1
            if len(test.attempts) > 1 or (test.attempt or 1) > 1:
                retried[test.name] += 1
            if test.flaky:
                flaky[test.name] += 1
                last[test.name] = max(last.get(test.name, 0), run.spec.release.revision)
    rows: list[dict[str, Any]] = [
        {
            "test": clip(name, 253),
            "flakyRuns": count,
            "runs": seen[name],
            "retriedRuns": retried[name],
            "rate": round(count / seen[name], 4),
            "lastRevision": last[name],
        }
        for name, count in flaky.items()
    ]
    rows.sort(key=lambda r: (-r["flakyRuns"], -r["lastRevision"], r["test"]))
    return rows[:MAX_FLAKY]


def build_regressions(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Runs whose status.regression names a change against the previous revision, newest first."""
    found = []
    for run in sorted(runs, key=reruns.order_key, reverse=True):
        r = run.status.regression
        if r is None or not (r.newly_failing or r.fixed):
            continue
        found.append(
            {
                "run": clip(run.name, 253),
                "revision": run.spec.release.revision,
                "comparedWith": clip(r.compared_with, 253),
                "comparedRevision": r.revision,
                "newlyFailing": [clip(k, 500) for k in r.newly_failing[:MAX_KEYS]],
                "fixed": [clip(k, 500) for k in r.fixed[:MAX_KEYS]],
                "stillFailing": [clip(k, 500) for k in r.still_failing[:MAX_KEYS]],
            }
        )
    return found[:MAX_REGRESSIONS]


def build_release_history(runs: Sequence[Run], *, last: int) -> dict[str, Any]:
    """A release's page: one row per revision (its newest attempt), newest first, at most `last`; the
    chart's series oldest first; flaky tests and regressions over the runs of those revisions."""
    rows = _newest_per_revision(runs)[:last]
    kept = {r.spec.release.revision for r in rows}
    shown = [r for r in runs if r.spec.release.revision in kept]
    attempts = Counter(r.spec.release.revision for r in shown)
    return {
        "revisions": [{**build_run_row(r), "attempts": attempts[r.spec.release.revision]} for r in rows],
        "series": [
            {
                "revision": r.spec.release.revision,
                "phase": r.status.phase.value,
                "durationSeconds": run_seconds(r),
                "passRate": pass_rate(r),
            }
            for r in reversed(rows)
        ],
        "flaky": build_flaky_table(shown),
        "regressions": build_regressions(shown),
    }


def matches(row: Mapping[str, Any], *, phase: str, since: datetime | None) -> bool:
    """The filters the apiserver cannot apply: the run's phase and its creation time."""
    if phase and row["phase"] != phase:
        return False
    if since is not None:
        created = row.get("createdAt")
        if not created or datetime.fromisoformat(created) < since:
            return False
    return True


def sort_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Newest first within what was listed (the apiserver pages in namespace/name order)."""
    return sorted(rows, key=lambda r: (r.get("createdAt") or "", r["name"]), reverse=True)


PHASES = [p.value for p in RunPhase]
TEST_PHASES = [p.value for p in TestPhase]
