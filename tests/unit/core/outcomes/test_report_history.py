"""The report's regression section, its subject count and the history strip of the release's last runs."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from runs import report_run as build_run

from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import Regression, RunPhase, RunStatus, Summary
from helm_e2e.core.outcomes import history_strip
from helm_e2e.core.outcomes.report import PHASE_COLORS, build_subject, render_report
from helm_e2e.core.results import regressions

MakeRun = Callable[..., Run]  # the report_run fixture (conftest.py)
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
REGRESSION = Regression(
    compared_with="webhooks-11",
    revision=11,
    newly_failing=["api::tests/test_api.py::test_checkout", "ui"],
    still_failing=["api::tests/test_api.py::test_refund"],
    fixed=["load::tests/test_load.py::test_p99"],
)


def with_regression(run: Run, regression: Regression | None = REGRESSION) -> Run:
    return run.model_copy(update={"status": run.status.model_copy(update={"regression": regression})})


def earlier(
    revision: int, phase: RunPhase, seconds: float, *, tag: str = "", attempt: int | None = None
) -> Run:
    """Another finished run of webhooks, `seconds` long, completed before r12's."""
    base = build_run(RunPhase.SUCCEEDED)
    ref = base.spec.release.model_copy(update={"revision": revision, "image_tag": tag or f"2.{revision}.0"})
    started = T0 + timedelta(minutes=revision)
    status = RunStatus(
        phase=phase,
        started_at=started,
        completed_at=started + timedelta(seconds=seconds),
        summary=Summary(total=3, passed=3 if phase == RunPhase.SUCCEEDED else 2),
    )
    name = f"webhooks-{revision}" + (f"-r{attempt}" if attempt else "")
    spec = base.spec.model_copy(update={"release": ref, "attempt": attempt})
    return Run(name=name, namespace="prod", spec=spec, status=status)


# --- the subject ---
@pytest.mark.parametrize(
    ("phase", "regression", "ends"),
    [
        (RunPhase.FAILED, REGRESSION, "FAILED 2/3 (2 new)"),
        (RunPhase.FAILED, REGRESSION.model_copy(update={"newly_failing": []}), "FAILED 2/3"),
        (RunPhase.SUCCEEDED, REGRESSION.model_copy(update={"newly_failing": []}), "PASSED 3/3"),
        (RunPhase.FAILED, None, "FAILED 2/3"),
        (
            RunPhase.FAILED,
            REGRESSION.model_copy(
                update={"newly_failing": [f"t{i}" for i in range(regressions.MAX_ENTRIES)]}
            ),
            "FAILED 2/3 (50+ new)",
        ),
        (RunPhase.SUPERSEDED, REGRESSION, "SUPERSEDED"),
    ],
)
def test_the_subject_counts_the_new_failures(
    report_run: MakeRun, phase: RunPhase, regression: Regression | None, ends: str
) -> None:
    subject = build_subject(with_regression(report_run(phase), regression), cluster="prod")
    assert subject == f"[helm-e2e] webhooks r12 in prod: {ends}"


# --- the regression section ---
def test_the_html_puts_new_failures_first_marked_new_then_still_failing_then_fixed(
    report_run: MakeRun,
) -> None:
    html = render_report(with_regression(report_run()), cluster="prod").html
    assert "Compared with r11 (webhooks-11): 2 new, 1 still failing, 1 fixed" in html
    order = [
        html.index(">new</span>"),
        html.index("api::tests/test_api.py::test_checkout"),
        html.index("ui</td>"),
        html.index(">still failing</span>"),
        html.index("api::tests/test_api.py::test_refund"),
        html.index(">fixed</span>"),
        html.index("load::tests/test_load.py::test_p99"),
    ]
    assert order == sorted(order)
    assert html.count(">new</span>") == 2
    assert html.index("Compared with r11") < html.index(">Test</th>")  # above the table of tests


def test_the_text_part_says_the_same_in_the_same_order(report_run: MakeRun) -> None:
    text = render_report(with_regression(report_run()), cluster="prod").text
    section = text[text.index("Compared with r11") :]
    lines = [line.split() for line in section.splitlines()[1:5]]
    assert lines == [
        ["NEW", "api::tests/test_api.py::test_checkout"],
        ["NEW", "ui"],
        ["STILL", "api::tests/test_api.py::test_refund"],
        ["FIXED", "load::tests/test_load.py::test_p99"],
    ]
    assert text.index("Compared with r11") < text.index("\nTests\n")


def test_without_a_previous_run_there_is_no_regression_section(report_run: MakeRun) -> None:
    report = render_report(report_run(), cluster="prod")
    assert "Compared with" not in report.text
    assert "Compared with" not in report.html


def test_a_comparison_with_nothing_failing_says_so(report_run: MakeRun) -> None:
    calm = Regression(compared_with="webhooks-11", revision=11)
    report = render_report(with_regression(report_run(RunPhase.SUCCEEDED), calm), cluster="prod")
    assert "0 new, 0 still failing, 0 fixed" in report.text
    assert "Nothing failed in either run." in report.html


def test_hostile_keys_are_escaped_in_the_html(report_run: MakeRun) -> None:
    hostile = Regression(
        compared_with="webhooks-11", revision=11, newly_failing=['api::t.py::x[<img src=x onerror="a()">]']
    )
    html = render_report(with_regression(report_run(), hostile), cluster="prod").html
    assert "<img" not in html
    assert "&lt;img src=x onerror=&#34;a()&#34;&gt;" in html


# --- the history strip ---
def strip_runs() -> list[Run]:
    return [
        earlier(10, RunPhase.SUCCEEDED, 62, tag='2.10.0"><script>'),
        earlier(11, RunPhase.FAILED, 84),
        earlier(11, RunPhase.SUCCEEDED, 21, attempt=2),
    ]


def test_the_html_strip_shows_each_run_as_a_bar_coloured_by_result_and_as_tall_as_it_took(
    report_run: MakeRun,
) -> None:
    run = report_run()  # r12, Failed, 42 s
    html = render_report(run, cluster="prod", history=strip_runs()).html
    assert "Last runs of webhooks" in html
    bars = re.findall(r'<td height="(\d+)" bgcolor="(#[0-9a-f]{6})"', html)
    assert bars == [
        ("31", PHASE_COLORS["Succeeded"]),  # 4 px + 62/84 of the 36 px above it
        ("40", PHASE_COLORS["Failed"]),  # the longest
        ("13", PHASE_COLORS["Succeeded"]),
        ("22", PHASE_COLORS["Failed"]),  # this run
    ]
    for label in ("r10", "r11", "r11#2", "r12"):
        assert f">{label}<br>" in html
    assert 'title="r11 · image 2.11.0 · Failed 2/3 · 1m24s"' in html
    assert 'title="r12 · image 2.4.1 · Failed 2/3 · 42s"' in html
    assert "<script>" not in html  # an image tag is data: escaped in the tooltip
    assert "<svg" not in html.lower()  # Gmail strips SVG: tables and bgcolor only


def test_the_text_part_has_the_strip_on_one_line(report_run: MakeRun) -> None:
    text = render_report(report_run(), cluster="prod", history=strip_runs()).text
    assert "History     r10 ✓ 1m02s · r11 ✗ 1m24s · r11#2 ✓ 21s · r12 ✗ 42s\n" in text


def test_the_strip_shows_the_last_ten_finished_runs_up_to_this_one(report_run: MakeRun) -> None:
    runs = [earlier(r, RunPhase.SUCCEEDED, 30) for r in range(1, 12)]
    runs.append(earlier(13, RunPhase.FAILED, 30))  # newer than this report's run: not shown
    active = earlier(9, RunPhase.RUNNING, 30).model_copy(update={"name": "webhooks-9-r2"})
    bars = history_strip.build_strip(report_run(), [*runs, active], colors=PHASE_COLORS)
    assert [b.label for b in bars] == [f"r{r}" for r in range(3, 13)]
    assert [b.current for b in bars] == [False] * 9 + [True]


def test_a_superseded_run_is_a_grey_bar_and_a_run_without_times_a_short_one(report_run: MakeRun) -> None:
    superseded = earlier(11, RunPhase.SUPERSEDED, 10)
    untimed = earlier(10, RunPhase.ERROR, 10).model_copy(update={"status": RunStatus(phase=RunPhase.ERROR)})
    bars = history_strip.build_strip(report_run(), [untimed, superseded], colors=PHASE_COLORS)
    assert [(b.label, b.mark, b.duration, b.height) for b in bars] == [
        ("r10", "⚠", "-", history_strip.MIN_HEIGHT),
        ("r11", history_strip.OTHER_MARK, "10s", 13),
        ("r12", "✗", "42s", history_strip.MAX_HEIGHT),
    ]
    assert bars[1].color == PHASE_COLORS["Superseded"]


def test_the_first_run_of_a_release_has_no_strip(report_run: MakeRun) -> None:
    report = render_report(report_run(), cluster="prod", history=[report_run()])
    assert "Last runs of" not in report.html
    assert "History " not in report.text


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "-"), (-1, "-"), (0.4, "0s"), (58, "58s"), (62, "1m02s"), (7500, "2h05m")]
)
def test_durations_are_short(seconds: float | None, text: str) -> None:
    assert history_strip.format_duration(seconds) == text
