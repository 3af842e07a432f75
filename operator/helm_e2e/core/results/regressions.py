"""Regressions (pure): a finished run against the previous revision's finished run of the same release.

The run compared with is the newest run (highest attempt, then latest completion) of the highest revision
below this one that reached a verdict (Succeeded, Failed, Error); Superseded, Cancelled and NoTests runs
tested nothing to the end, and runs of the same revision (re-runs) are not "the previous revision".

What is compared are *failure keys*: one per failing pytest test, `<test>::<pytest node id>` (e.g.
`api::tests/test_api.py::test_token`), so two tests with the same node id stay apart; a failing test whose
pytest ids are unknown is keyed by its name alone (`api`). Test names never contain `::` (they are
Kubernetes object names), so the key's first `::` always separates the two. The ids are
`TestResult.failures[].id` (junit.xml), else `TestResult.pytest.first_failures` (the plugin's summary).

Per test, between the two runs:
- failing now, passed or absent before → every key newly failing;
- passed now, failing before → every earlier key fixed;
- failing in both → keys in both still failing; a key only now is newly failing and a key only before is
  fixed, but only when the other side's list is complete (pytest counted no more failures than it named;
  without pytest's count, a junit.xml list shorter than the reader's limit) and both are keyed alike (ids,
  or names); otherwise it is still failing (no false "new") and nothing is called fixed (no false "fixed").
So newly and fixed never share a key, newly plus still are the keys failing now, and a run compared with
itself has only still-failing keys. Keys are cleaned of control characters and cut to MAX_KEY characters;
each list keeps at most MAX_ENTRIES (the counts in the report saturate there: "50+ new").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import Regression, RunPhase, TestPhase, TestResult

SEPARATOR = "::"
MAX_ENTRIES = 50  # per list in status.regression
MAX_KEY = 200  # characters of one key
LISTED_FAILURES = 50  # failures[] kept per test from junit.xml (core.junitxml.failures_from_junit's limit)
MAX_IDS = 500  # pytest ids read per test (inputs are bounded upstream; this is a second fence)
VERDICTS = frozenset({RunPhase.SUCCEEDED, RunPhase.FAILED, RunPhase.ERROR})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Failing:
    """One test's failure keys in one run."""

    keys: tuple[str, ...]  # in the order reported, no duplicates
    by_id: bool  # keyed by pytest ids (else by the test's name)
    complete: bool  # every failure pytest counted is named


@dataclass(frozen=True)
class Comparison:
    newly_failing: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    still_failing: list[str] = field(default_factory=list)


def build_key(test: str, pytest_id: str = "") -> str:
    """`<test>::<id>`, or the test name alone; cleaned and bounded."""
    raw = f"{test}{SEPARATOR}{pytest_id}" if pytest_id else test
    key = _CONTROL.sub(" ", raw)
    return key if len(key) <= MAX_KEY else key[: MAX_KEY - 1] + "…"


def failing_of(result: TestResult) -> Failing | None:
    """A final test's failure keys; None when it passed or has not finished."""
    if not result.phase.is_final or result.phase == TestPhase.SUCCEEDED:
        return None
    summary = result.pytest.first_failures if result.pytest else []
    ids = [i for i in ([f.id for f in result.failures[:MAX_IDS]] or summary[:MAX_IDS]) if i]
    if not ids:
        return Failing(keys=(build_key(result.name),), by_id=False, complete=True)
    keys = tuple(dict.fromkeys(build_key(result.name, i) for i in ids))
    if result.pytest is not None:  # pytest's own count says whether every failure is named
        complete = len(ids) >= result.pytest.failed + result.pytest.errors
    else:  # junit.xml alone: a list as long as the reader keeps may have been cut
        complete = len(ids) < LISTED_FAILURES
    return Failing(keys=keys, by_id=True, complete=complete)


def compare(current: Sequence[TestResult], previous: Sequence[TestResult]) -> Comparison:
    """Newly failing and still failing in the current run's order, fixed in the previous run's order."""
    before = {t.name: t for t in previous}
    now = {t.name: t for t in current}
    out = Comparison()
    for test in current:
        cur = failing_of(test)
        if cur is None:
            continue
        prev = failing_of(before[test.name]) if test.name in before else None
        if prev is None:
            out.newly_failing.extend(cur.keys)
            continue
        alike = cur.by_id == prev.by_id
        known = set(prev.keys)
        new = {k for k in cur.keys if k not in known} if alike and prev.complete else set()
        out.newly_failing.extend(k for k in cur.keys if k in new)
        out.still_failing.extend(k for k in cur.keys if k not in new)
    for test in previous:
        prev = failing_of(test)
        if prev is None or test.name not in now or not now[test.name].phase.is_final:
            continue
        cur = failing_of(now[test.name])
        if cur is None:
            out.fixed.extend(prev.keys)
        elif cur.by_id == prev.by_id and cur.complete:
            failing = set(cur.keys)
            out.fixed.extend(k for k in prev.keys if k not in failing)
    return out


def choose_previous(run: Run, runs: Iterable[Run]) -> Run | None:
    """The newest verdict run of the highest earlier revision of the same release, if any."""
    ref = run.spec.release
    candidates = [
        r
        for r in runs
        if r.spec.release.name == ref.name
        and r.spec.release.namespace == ref.namespace
        and r.spec.release.revision < ref.revision
        and r.status.phase in VERDICTS
        and r.name != run.name
    ]
    if not candidates:
        return None
    return max(
        candidates,
        key=lambda r: (
            r.spec.release.revision,
            r.spec.attempt or 1,
            r.status.completed_at.timestamp() if r.status.completed_at else 0.0,
            r.name,
        ),
    )


def _bounded(keys: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(keys))[:MAX_ENTRIES]


def decide_regression(run: Run, runs: Iterable[Run]) -> Regression | None:
    """status.regression of a run with a verdict; None when it has none or nothing to compare with."""
    if run.status.phase not in VERDICTS:
        return None
    previous = choose_previous(run, runs)
    if previous is None:
        return None
    found = compare(run.status.tests, previous.status.tests)
    return Regression(
        compared_with=previous.name,
        revision=previous.spec.release.revision,
        newly_failing=_bounded(found.newly_failing),
        fixed=_bounded(found.fixed),
        still_failing=_bounded(found.still_failing),
    )


def count_label(keys: Sequence[str]) -> str:
    """ "3", or "50+" when the list was cut at MAX_ENTRIES."""
    return f"{len(keys)}+" if len(keys) >= MAX_ENTRIES else str(len(keys))
