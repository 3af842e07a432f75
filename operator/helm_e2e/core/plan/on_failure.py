"""Whether a run rolls its release back when it fails: decided once, at planning (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from helm_e2e.core.model import names
from helm_e2e.core.model.release import OnFailure, Release
from helm_e2e.core.model.suite import SuiteSpec


def decide_on_failure(release: Release, suites: Sequence[SuiteSpec], *, enabled: bool) -> OnFailure:
    """`rollback` when the operator, a used suite or the chart opts in; else `none`."""
    chart = release.chart_annotations.get(names.ON_FAILURE_ANNOTATION, "").strip().lower()
    opted = enabled or chart == OnFailure.ROLLBACK or any(s.on_failure == OnFailure.ROLLBACK for s in suites)
    return OnFailure.ROLLBACK if opted else OnFailure.NONE
