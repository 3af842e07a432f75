"""The viewer's pure builders: rows, a run's page, a release's history (flaky tests, regressions, the
chart's series), the filters and the pagination cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import runs

from helm_e2e.core.model.release import ManagedBy
from helm_e2e.core.model.run import RequestTrigger, Run, RunRequest
from helm_e2e.core.model.run_status import (
    AttemptRecord,
    Regression,
    RunPhase,
    RunStatus,
    Summary,
    TestPhase,
    TestResult,
)
from helm_e2e.viewer import api
from helm_e2e.viewer.cursor import Cursor, CursorInvalid, decode_cursor, encode_cursor

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def run(
    revision: int,
    phase: RunPhase = RunPhase.SUCCEEDED,
    *,
    attempt: int | None = None,
    seconds: float = 60,
    tests: list[TestResult] | None = None,
    regression: Regression | None = None,
) -> Run:
    tests = tests if tests is not None else [TestResult(name="smoke", phase=TestPhase.SUCCEEDED, exit_code=0)]
    passed = sum(t.phase == TestPhase.SUCCEEDED for t in tests)
    started = T0 + timedelta(hours=revision)
    return runs.make_run(
        release={
            "name": "shop",
            "namespace": "prod",
            "revision": revision,
            "chart": "shop",
            "chart_version": "1.0.0",
            "image_tag": f"{revision}.0.0",
        },
        name=f"shop-{revision}" + (f"-a{attempt}" if attempt else ""),
        uid="",
        created_at=started,
        attempt=attempt,
        request=RunRequest(trigger=RequestTrigger.RERUN, token="t") if attempt else None,
        status=RunStatus(
            phase=phase,
            started_at=started,
            completed_at=started + timedelta(seconds=seconds),
            summary=Summary(total=len(tests), passed=passed, failed=len(tests) - passed),
            tests=tests,
            regression=regression,
        ),
    )


def flaky(name: str) -> TestResult:
    return TestResult(
        name=name,
        phase=TestPhase.SUCCEEDED,
        attempt=2,
        flaky=True,
        attempts=[AttemptRecord(attempt=1, exit_code=1), AttemptRecord(attempt=2, phase=TestPhase.SUCCEEDED)],
    )


def test_a_row_has_the_release_revision_duration_and_pass_rate_of_the_run() -> None:
    row = api.build_run_row(
        run(3, RunPhase.FAILED, seconds=90, tests=[TestResult(name="a", phase=TestPhase.FAILED)])
    )
    assert (row["name"], row["release"], row["revision"], row["imageTag"]) == ("shop-3", "shop", 3, "3.0.0")
    assert (row["phase"], row["durationSeconds"], row["passRate"]) == ("Failed", 90.0, 0.0)
    assert row["summary"] == {"total": 1, "passed": 0, "failed": 1, "errored": 0, "flaky": 0}
    assert row["request"] is None


def test_a_run_without_tests_has_no_pass_rate_and_a_running_one_no_duration() -> None:
    running = run(1, RunPhase.RUNNING, tests=[])
    running.status.completed_at = None
    assert api.pass_rate(running) is None
    assert api.run_seconds(running) is None


def test_strings_from_the_cluster_are_cut_to_their_bound() -> None:
    r = run(1, tests=[TestResult(name="a", log_tail="x" * (api.MAX_LOG + 10), message="m" * 5000)])
    r.status.message = "y" * 10_000
    detail = api.build_run_detail(r, [])
    assert len(detail["tests"][0]["logTail"]) == api.MAX_LOG + 1
    assert len(detail["tests"][0]["message"]) == api.MAX_TEXT + 1
    assert len(detail["run"]["message"]) == api.MAX_TEXT + 1


def test_the_run_page_lists_events_oldest_first_and_none_when_the_user_may_not_list_them() -> None:
    events = [
        {"type": "Warning", "reason": "TestFailed", "message": "b", "lastTimestamp": "2026-12-01T10:02:00Z"},
        {"type": "Normal", "reason": "Started", "message": "a", "lastTimestamp": "2026-12-01T10:00:00Z"},
    ]
    detail = api.build_run_detail(run(1), events)
    assert [e["reason"] for e in detail["events"]] == ["Started", "TestFailed"]
    assert api.build_run_detail(run(1), None)["events"] is None
    many = [{"reason": str(i), "lastTimestamp": f"2026-12-01T10:00:{i:02d}Z"} for i in range(60)] * 3
    assert len(api.build_run_detail(run(1), many)["events"]) == api.MAX_EVENTS


def test_the_history_has_one_row_per_revision_its_newest_attempt_newest_first() -> None:
    runs = [run(1), run(2, RunPhase.FAILED), run(2, attempt=2, seconds=30), run(3)]
    history = api.build_release_history(runs, last=10)
    assert [(r["revision"], r["name"], r["attempts"]) for r in history["revisions"]] == [
        (3, "shop-3", 1),
        (2, "shop-2-a2", 2),
        (1, "shop-1", 1),
    ]
    assert [(p["revision"], p["durationSeconds"]) for p in history["series"]] == [
        (1, 60.0),
        (2, 30.0),
        (3, 60.0),
    ]


def test_the_history_keeps_the_last_n_revisions_and_counts_only_their_runs() -> None:
    runs = [run(r, tests=[flaky("load")]) for r in range(1, 8)]
    history = api.build_release_history(runs, last=3)
    assert [r["revision"] for r in history["revisions"]] == [7, 6, 5]
    assert history["flaky"][0]["runs"] == 3


def test_the_flaky_table_counts_runs_where_a_test_passed_only_on_a_retry() -> None:
    ok = TestResult(name="load", phase=TestPhase.SUCCEEDED)
    runs = [
        run(1, tests=[flaky("load"), ok.model_copy(update={"name": "api"})]),
        run(2, tests=[ok]),
        run(3, tests=[flaky("load")]),
    ]
    assert api.build_flaky_table(runs) == [
        {"test": "load", "flakyRuns": 2, "runs": 3, "retriedRuns": 2, "rate": 0.6667, "lastRevision": 3}
    ]


def test_regressions_list_runs_that_changed_what_fails_newest_first() -> None:
    new = Regression(compared_with="shop-1", revision=1, newly_failing=["smoke::t.py::a"])
    fixed = Regression(compared_with="shop-2", revision=2, fixed=["smoke::t.py::a"])
    same = Regression(compared_with="shop-3", revision=3, still_failing=["x"])
    runs = [run(1), run(2, regression=new), run(3, regression=fixed), run(4, regression=same)]
    found = api.build_regressions(runs)
    assert [(g["run"], g["comparedWith"], g["newlyFailing"], g["fixed"]) for g in found] == [
        ("shop-3", "shop-2", [], ["smoke::t.py::a"]),
        ("shop-2", "shop-1", ["smoke::t.py::a"], []),
    ]


def test_builders_never_change_the_runs_they_are_given() -> None:
    runs = [run(1, tests=[flaky("load")]), run(2)]
    before = [r.model_dump() for r in runs]
    api.build_release_history(runs, last=5)
    api.build_run_detail(runs[0], [])
    assert [r.model_dump() for r in runs] == before


@pytest.mark.parametrize(
    ("phase", "since", "shown"),
    [
        ("", None, True),
        ("Failed", None, False),
        ("Succeeded", T0, True),
        ("", T0 + timedelta(days=1), False),
    ],
)
def test_phase_and_time_filters(phase: str, since: datetime | None, shown: bool) -> None:
    assert api.matches(api.build_run_row(run(1)), phase=phase, since=since) is shown


def test_a_cursor_round_trips_and_a_forged_one_is_refused() -> None:
    cursor = Cursor(index=2, token="eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ")
    assert decode_cursor(encode_cursor(cursor), targets=3) == cursor
    assert decode_cursor("", targets=1) == Cursor()
    for bad in ("!!!", encode_cursor(Cursor(index=5)), "e30", "W10", "x" * 5000):
        with pytest.raises(CursorInvalid):
            decode_cursor(bad, targets=3)


def test_a_row_names_the_deploys_commit_and_who_manages_it_where_known() -> None:
    plain = run(1)
    assert (api.build_run_row(plain)["commit"], api.build_run_row(plain)["managedBy"]) == ("", None)
    flux = run(2)
    flux.spec.release.commit = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
    flux.spec.release.managed_by = ManagedBy(kind="HelmRelease", name="shop", namespace="flux")
    row = api.build_run_row(flux)
    assert (row["commit"], row["managedBy"]) == (
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
        "HelmRelease flux/shop",
    )
