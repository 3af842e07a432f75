"""Regressions: which run is compared with, and a table of comparisons, then properties over any two runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import runs
from hypothesis import given, settings
from hypothesis import strategies as st

from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import (
    PytestFailure,
    PytestSummary,
    RunPhase,
    RunStatus,
    TestPhase,
    TestResult,
)
from helm_e2e.core.results import regressions

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def make_run(
    revision: int,
    *tests: TestResult,
    phase: RunPhase = RunPhase.SUCCEEDED,
    attempt: int | None = None,
    name: str = "",
    release: str = "web",
    completed: int = 0,
) -> Run:
    status = RunStatus(phase=phase, tests=list(tests), completed_at=T0 + timedelta(seconds=completed))
    return runs.make_run(
        release={"name": release, "revision": revision},
        name=name or f"{release}-{revision}" + (f"-r{attempt}" if attempt else ""),
        uid="",
        attempt=attempt,
        status=status,
    )


def passed(name: str) -> TestResult:
    return TestResult(name=name, phase=TestPhase.SUCCEEDED)


def failed(
    name: str, *ids: str, phase: TestPhase = TestPhase.FAILED, counted: int | None = None
) -> TestResult:
    """A failing test; `ids` come from junit.xml (failures[]); `counted`: pytest's own count of failures."""
    summary = PytestSummary(failed=counted) if counted is not None else None
    return TestResult(name=name, phase=phase, failures=[PytestFailure(id=i) for i in ids], pytest=summary)


def summary_failed(name: str, *ids: str, counted: int | None = None) -> TestResult:
    """A failing test known only from the pytest plugin's summary (first_failures)."""
    summary = PytestSummary(failed=len(ids) if counted is None else counted, first_failures=list(ids))
    return TestResult(name=name, phase=TestPhase.FAILED, pytest=summary)


# --- the run compared with ---
@pytest.mark.parametrize(
    ("others", "expected"),
    [
        ([], None),
        ([make_run(1)], "web-1"),
        ([make_run(1), make_run(2)], "web-2"),  # the highest revision below
        ([make_run(2), make_run(1)], "web-2"),
        ([make_run(1), make_run(2, phase=RunPhase.SUPERSEDED)], "web-1"),  # no verdict: skipped
        (
            [
                make_run(1),
                make_run(2, phase=RunPhase.CANCELLED),
                make_run(2, phase=RunPhase.NO_TESTS, name="x"),
            ],
            "web-1",
        ),
        ([make_run(1, phase=RunPhase.ERROR)], "web-1"),  # Error is a verdict
        ([make_run(1, phase=RunPhase.FAILED), make_run(1, attempt=2)], "web-1-r2"),  # its newest run
        ([make_run(1, attempt=2, completed=1), make_run(1, attempt=2, name="b", completed=5)], "b"),
        ([make_run(3, name="web-3-r2", attempt=2)], None),  # the same revision is not "previous"
        ([make_run(4)], None),  # nor a newer one
        ([make_run(1, release="api")], None),  # nor another release
        ([make_run(1, phase=RunPhase.RUNNING)], None),
    ],
)
def test_the_run_compared_with_is_the_newest_verdict_of_the_highest_earlier_revision(
    others: list[Run], expected: str | None
) -> None:
    run = make_run(3, phase=RunPhase.FAILED)
    chosen = regressions.choose_previous(run, [run, *others])
    assert (chosen.name if chosen else None) == expected


# --- the comparison ---
@pytest.mark.parametrize(
    ("previous", "current", "new", "still", "fixed"),
    [
        # whole tests, no pytest ids: keyed by name
        ([passed("a")], [failed("a")], ["a"], [], []),
        ([failed("a")], [passed("a")], [], [], ["a"]),
        ([failed("a")], [failed("a")], [], ["a"], []),
        ([], [failed("a")], ["a"], [], []),  # a new test that fails is a new failure
        ([failed("a")], [], [], [], []),  # a test that is gone is not fixed
        ([failed("a")], [failed("a", phase=TestPhase.ERROR)], [], ["a"], []),
        # pytest ids from junit.xml: keyed <test>::<id>
        (
            [failed("a", "t.py::x", "t.py::y")],
            [failed("a", "t.py::y", "t.py::z")],
            ["a::t.py::z"],
            ["a::t.py::y"],
            ["a::t.py::x"],
        ),
        ([passed("a")], [failed("a", "t.py::x")], ["a::t.py::x"], [], []),
        ([failed("a", "t.py::x")], [passed("a")], [], [], ["a::t.py::x"]),
        # the same node id in two tests stays apart
        ([failed("a", "t.py::x")], [failed("b", "t.py::x")], ["b::t.py::x"], [], []),
        # ids from the plugin's summary when junit.xml said nothing
        (
            [summary_failed("a", "t.py::x")],
            [summary_failed("a", "t.py::x", "t.py::y")],
            ["a::t.py::y"],
            ["a::t.py::x"],
            [],
        ),
        # junit ids win over the summary's
        (
            [passed("a")],
            [
                failed("a", "j.py::x").model_copy(
                    update={"pytest": PytestSummary(failed=1, first_failures=["s.py::x"])}
                )
            ],
            ["a::j.py::x"],
            [],
            [],
        ),
        # an incomplete list before (pytest counted 5, named 1): nothing is claimed new; what it named and
        # the complete list now lacks is fixed
        (
            [summary_failed("a", "t.py::x", counted=5)],
            [summary_failed("a", "t.py::y")],
            [],
            ["a::t.py::y"],
            ["a::t.py::x"],
        ),
        # an incomplete list now: nothing is claimed fixed
        (
            [summary_failed("a", "t.py::x")],
            [summary_failed("a", "t.py::y", counted=5)],
            ["a::t.py::y"],
            [],
            [],
        ),
        # keyed differently (a name before, ids now, or the other way): still failing, nothing fixed
        ([failed("a")], [failed("a", "t.py::x")], [], ["a::t.py::x"], []),
        ([failed("a", "t.py::x")], [failed("a", phase=TestPhase.ERROR)], [], ["a"], []),
        # a test still running now is neither failing nor fixed
        ([failed("a")], [TestResult(name="a", phase=TestPhase.RUNNING)], [], [], []),
    ],
)
def test_a_comparison_names_newly_failing_still_failing_and_fixed_keys(
    previous: list[TestResult], current: list[TestResult], new: list[str], still: list[str], fixed: list[str]
) -> None:
    found = regressions.compare(current, previous)
    assert (found.newly_failing, found.still_failing, found.fixed) == (new, still, fixed)


def test_the_regression_names_the_run_and_revision_compared_with() -> None:
    before = make_run(1, passed("api"), passed("ui"))
    run = make_run(2, failed("api", "tests/test_api.py::test_token"), passed("ui"), phase=RunPhase.FAILED)
    regression = regressions.decide_regression(run, [before, run])
    assert regression is not None
    assert (regression.compared_with, regression.revision) == ("web-1", 1)
    assert regression.newly_failing == ["api::tests/test_api.py::test_token"]
    assert regression.model_dump(by_alias=True)["newlyFailing"] == regression.newly_failing


@pytest.mark.parametrize(
    "phase", [RunPhase.SUPERSEDED, RunPhase.CANCELLED, RunPhase.NO_TESTS, RunPhase.RUNNING]
)
def test_a_run_without_a_verdict_has_no_regression(phase: RunPhase) -> None:
    assert regressions.decide_regression(make_run(2, failed("a"), phase=phase), [make_run(1)]) is None


def test_the_first_revision_has_nothing_to_compare_with() -> None:
    assert regressions.decide_regression(make_run(1, failed("a"), phase=RunPhase.FAILED), []) is None


def test_hostile_ids_are_cleaned_cut_and_the_lists_bounded() -> None:
    ids = [f"t.py::test_{i}[\x1b[31m{'x' * 500}]" for i in range(300)]
    run = make_run(2, failed("a", *ids), phase=RunPhase.FAILED)
    regression = regressions.decide_regression(run, [make_run(1, passed("a"))])
    assert regression is not None
    assert len(regression.newly_failing) == regressions.MAX_ENTRIES
    assert all(len(k) <= regressions.MAX_KEY and "\x1b" not in k for k in regression.newly_failing)
    assert regressions.count_label(regression.newly_failing) == "50+"
    assert regressions.count_label(["a", "b"]) == "2"


def test_a_long_key_keeps_its_test_name_in_front() -> None:
    key = regressions.build_key("api", "t.py::" + "y" * 1000)
    assert key.startswith("api::t.py::")
    assert key.endswith("…")
    assert len(key) == regressions.MAX_KEY


# --- properties ---
IDS = st.lists(st.sampled_from(["t.py::a", "t.py::b", "t.py::c", "u.py::a"]), max_size=4, unique=True)
PHASES = st.sampled_from([TestPhase.SUCCEEDED, TestPhase.FAILED, TestPhase.ERROR, TestPhase.CANCELLED])


@st.composite
def results(draw: st.DrawFn) -> list[TestResult]:
    out = []
    for name in draw(st.lists(st.sampled_from(["a", "b", "c"]), max_size=3, unique=True)):
        phase, ids = draw(PHASES), draw(IDS)
        counted = draw(st.one_of(st.none(), st.integers(0, 6)))
        summary = PytestSummary(failed=counted) if counted is not None else None
        from_junit = draw(st.booleans())
        if not from_junit:
            summary = PytestSummary(failed=counted or 0, first_failures=ids)
        failures = [PytestFailure(id=i) for i in ids] if from_junit else []
        out.append(TestResult(name=name, phase=phase, failures=failures, pytest=summary))
    return out


def failing_keys(tests: list[TestResult]) -> list[str]:
    return [k for t in tests if (f := regressions.failing_of(t)) for k in f.keys]


@settings(max_examples=300, deadline=None)
@given(previous=results(), current=results())
def test_no_key_is_both_new_and_fixed_and_every_failing_key_is_new_or_still(
    previous: list[TestResult], current: list[TestResult]
) -> None:
    found = regressions.compare(current, previous)
    assert not set(found.newly_failing) & set(found.fixed)
    assert not set(found.newly_failing) & set(found.still_failing)
    assert sorted(found.newly_failing + found.still_failing) == sorted(failing_keys(current))
    assert set(found.fixed) <= set(failing_keys(previous))
    assert not set(found.fixed) & set(failing_keys(current))


@settings(max_examples=200, deadline=None)
@given(tests=results())
def test_a_run_compared_with_itself_has_nothing_new_and_nothing_fixed(tests: list[TestResult]) -> None:
    found = regressions.compare(tests, tests)
    assert (found.newly_failing, found.fixed) == ([], [])
    assert found.still_failing == failing_keys(tests)


@settings(max_examples=200, deadline=None)
@given(previous=results(), current=results())
def test_swapping_the_runs_swaps_new_and_fixed_when_every_list_is_complete(
    previous: list[TestResult], current: list[TestResult]
) -> None:
    def complete(tests: list[TestResult]) -> bool:
        return all(f.complete and f.by_id for t in tests if (f := regressions.failing_of(t)))

    names = {t.name for t in previous} == {t.name for t in current}
    if complete(previous) and complete(current) and names:
        forward, backward = regressions.compare(current, previous), regressions.compare(previous, current)
        assert set(forward.newly_failing) == set(backward.fixed)
        assert set(forward.fixed) == set(backward.newly_failing)


def test_a_junit_list_as_long_as_the_readers_limit_may_be_cut_so_nothing_beyond_it_is_called_fixed() -> None:
    full = [f"t.py::x{i}" for i in range(regressions.LISTED_FAILURES)]
    before = failed("a", *full)  # no pytest summary: junit.xml alone, cut at the limit
    found = regressions.compare([failed("a", "t.py::x0")], [before])
    assert (found.fixed, found.still_failing) == ([f"a::{i}" for i in full[1:]], ["a::t.py::x0"])
    found = regressions.compare([before], [failed("a", "t.py::x0")])
    assert (found.fixed, found.newly_failing) == ([], [f"a::{i}" for i in full[1:]])  # before: complete
    found = regressions.compare([failed("a", "t.py::y", *full[1:])], [before])
    assert found.newly_failing == []  # before may have been cut: y is not claimed new
