"""The history strip of a report (pure): the release's last finished runs as a row of coloured bars.

One bar per run, oldest left: its colour is the phase, its height the run's duration (relative to the
longest shown), its label `r<revision>` (`r<revision>#<attempt>` for a re-run), and its tooltip the image
tag, the result and the duration. The HTML is built from tables and cells with `bgcolor` (what Gmail and
Outlook render; SVG and CSS layouts are stripped or ignored); the text part gets one line of the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import RunPhase

MAX_BARS = 10
MAX_TAG = 64  # characters of an image tag in a tooltip
MIN_HEIGHT, MAX_HEIGHT = 4, 40  # px of a bar
MARKS = {RunPhase.SUCCEEDED: "✓", RunPhase.FAILED: "✗", RunPhase.ERROR: "⚠"}
OTHER_MARK = "\N{EN DASH}"  # Superseded, Cancelled, NoTests: nothing tested to the end
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Bar:
    label: str  # r12, or r12#2 for the revision's second run
    title: str  # the tooltip: run, image tag, result, duration
    phase: str
    color: str
    mark: str
    duration: str  # 1m02s, or "-" when unknown
    height: int  # px
    current: bool  # the run this report is about


def format_duration(seconds: float | None, *, gap: str = "") -> str:
    """58s, 1m02s, 2h05m (with `gap=" "`: 1m 02s); "-" when unknown."""
    if seconds is None or seconds < 0:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{gap}{s % 60:02d}s"
    return f"{s // 3600}h{gap}{s % 3600 // 60:02d}m"


def _seconds(run: Run) -> float | None:
    started, completed = run.status.started_at, run.status.completed_at
    if started is None or completed is None:
        return None
    took = (completed - started).total_seconds()
    return took if took >= 0 else None


def _label(run: Run) -> str:
    attempt = run.spec.attempt or 1
    return f"r{run.spec.release.revision}" + (f"#{attempt}" if attempt > 1 else "")


def _order(run: Run) -> tuple[int, int, float, str]:
    completed = run.status.completed_at
    return (
        run.spec.release.revision,
        run.spec.attempt or 1,
        completed.timestamp() if completed else 0.0,
        run.name,
    )


def last_runs(run: Run, runs: Iterable[Run], *, limit: int = MAX_BARS) -> list[Run]:
    """The release's finished runs up to and including this one, oldest first, the newest `limit`.
    This run as given replaces its listed copy (the list may be older than the decision)."""
    ref = run.spec.release
    same = {
        r.name: r
        for r in runs
        if r.spec.release.name == ref.name and r.spec.release.namespace == ref.namespace
    }
    same[run.name] = run
    done = sorted(
        (r for r in same.values() if r.status.phase.is_final and _order(r) <= _order(run)), key=_order
    )
    return done[-limit:] if limit > 0 else []


def build_strip(run: Run, runs: Iterable[Run], *, colors: Mapping[str, str]) -> list[Bar]:
    shown = last_runs(run, runs)
    seconds = [_seconds(r) for r in shown]
    longest = max((s for s in seconds if s is not None), default=0.0)
    bars = []
    for r, took in zip(shown, seconds, strict=True):
        height = MIN_HEIGHT
        if took is not None and longest > 0:
            height = MIN_HEIGHT + round((MAX_HEIGHT - MIN_HEIGHT) * took / longest)
        tag = _CONTROL.sub(" ", r.spec.release.image_tag)[:MAX_TAG] or "-"
        summary = r.status.summary
        result = f"{r.status.phase.value} {summary.passed}/{summary.total}"
        label, duration = _label(r), format_duration(took)
        bars.append(
            Bar(
                label=label,
                title=f"{label} · image {tag} · {result} · {duration}",
                phase=r.status.phase.value,
                color=colors.get(r.status.phase.value, "#57606a"),
                mark=MARKS.get(r.status.phase, OTHER_MARK),
                duration=duration,
                height=height,
                current=r.name == run.name,
            )
        )
    return bars


def strip_line(bars: Iterable[Bar]) -> str:
    """`r3 ✓ 1m02s · r4 ✗ 58s · r5 ✓ 1m10s`"""
    return " · ".join(f"{b.label} {b.mark} {b.duration}" for b in bars)


def build_context(run: Run, runs: Iterable[Run], *, colors: Mapping[str, str]) -> dict[str, Any]:
    """The report templates' `strip` (bars) and `strip_line` (the text part's line)."""
    bars = build_strip(run, runs, colors=colors)
    return {"strip": bars, "strip_line": strip_line(bars)}
