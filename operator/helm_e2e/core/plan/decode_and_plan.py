"""Decode a release Secret and plan its tests in one pure, picklable step, for the sandbox process.

Everything a namespace writer controls (the release blob, hook manifests, suite templates) is parsed
and rendered here, so the operator runs this in clients/sandbox.py (time and memory limits) and gets
back only the bounded result: the Release *without its values* and the Plan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from helm_e2e.core.model.release import Release
from helm_e2e.core.model.run import ReadinessMode
from helm_e2e.core.model.suite import Suite
from helm_e2e.core.plan import build as planning
from helm_e2e.core.plan.pod_security import PodSecurityLevel
from helm_e2e.core.sources import helm_secret as releases


@dataclass(frozen=True)
class PlanOptions:
    """build_plan's settings (from config.Settings), picklable."""

    image_tag_values_path: str = "image.tag"
    run_chart_hooks: bool = True
    default_timeout_seconds: int = 600
    pod_security: PodSecurityLevel = PodSecurityLevel.BASELINE
    test_accounts: frozenset[str] = field(default_factory=frozenset)
    mail_allowed_domains: frozenset[str] | None = None
    readiness: ReadinessMode = ReadinessMode.ROLLOUT
    ready_timeout_seconds: int = 600
    rollback_on_failure: bool = False  # HELM_E2E_ROLLBACK=on-failure


@dataclass(frozen=True)
class ReleasePlan:
    release: Release  # values dropped: the operator process never holds them
    plan: planning.Plan


def without_values(release: Release) -> Release:
    return release.model_copy(update={"values": {}})


def decode_release(secret: Mapping[str, Any]) -> Release:
    """decode_release_secret, returning the Release without its values."""
    return without_values(releases.decode_release_secret(secret))


SuiteGuard = Callable[[str], AbstractContextManager[None]]


def plan_release(
    release: Release, *, suites: Sequence[Suite], options: PlanOptions, suite_guard: SuiteGuard | None = None
) -> planning.Plan:
    return planning.build_plan(
        release,
        suites=suites,
        image_tag_values_path=options.image_tag_values_path,
        run_chart_hooks=options.run_chart_hooks,
        default_timeout_seconds=options.default_timeout_seconds,
        pod_security=options.pod_security,
        test_accounts=options.test_accounts,
        mail_allowed_domains=options.mail_allowed_domains,
        suite_guard=suite_guard,
        readiness=options.readiness,
        ready_timeout_seconds=options.ready_timeout_seconds,
        rollback_on_failure=options.rollback_on_failure,
    )


def decode_and_plan(
    secret: Mapping[str, Any],
    *,
    suites: Sequence[Suite],
    options: PlanOptions,
    suite_guard: SuiteGuard | None = None,
) -> ReleasePlan:
    """ReleaseDecodeError / ReleaseIdentityError as decode_release_secret; suite problems in the plan."""
    release = releases.decode_release_secret(secret)
    plan = plan_release(release, suites=suites, options=options, suite_guard=suite_guard)
    return ReleasePlan(release=without_values(release), plan=plan)
