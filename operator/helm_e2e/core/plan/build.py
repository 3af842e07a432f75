"""Release + chart test hooks + E2ESuites → the Plan of a run's tests (pure).

Suites are checked, selected and rendered by core/plan/suites.py: any error of a suite makes it invalid (a
problem entry), never an exception that stops the hooks or the other suites. Every planned pod is checked
against the Pod Security Standards level and the ServiceAccount allow-list (core/plan/pod_security.py); a
violating test is still planned, with `policy_violation` set, never created. The run's spec is built by
core/plan/run_spec.py, each test's Pod by core/plan/pod_manifest.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence, Set
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from helm_e2e.core.model import names
from helm_e2e.core.model.release import ManagedBy, OnFailure, Release
from helm_e2e.core.model.run import ReadinessMode, ReadinessSpec, ReportSpec
from helm_e2e.core.model.suite import Suite, SuiteSpec
from helm_e2e.core.plan import pod_security as podpolicy
from helm_e2e.core.plan.chart_hooks import HookResource, HookSet, build_hook_set
from helm_e2e.core.plan.on_failure import decide_on_failure
from helm_e2e.core.plan.planned_test import (
    PlannedTest as PlannedTest,  # re-exported: callers use plan.PlannedTest
)
from helm_e2e.core.plan.pod_manifest import build_pod_manifest as build_pod_manifest  # re-exported
from helm_e2e.core.plan.readiness import ObjectKey, list_rollout_objects
from helm_e2e.core.plan.suites import merge_reports, plan_suite, unique_names
from helm_e2e.core.plan.suites import suite_matches as suite_matches  # re-exported
from helm_e2e.core.plan.suites import validate_suite as validate_suite  # re-exported
from helm_e2e.core.sources import flux as gitops
from helm_e2e.core.sources.helm_secret import resolve_image_tag
from helm_e2e.errors import ReleaseDecodeError, SuiteInvalid


class SuiteProblem(BaseModel):
    suite: str
    message: str


class Plan(BaseModel):
    image_tag: str
    tests: list[PlannedTest] = Field(default_factory=list)
    report: ReportSpec = Field(default_factory=ReportSpec)
    used_suites: list[str] = Field(default_factory=list)
    problems: list[SuiteProblem] = Field(default_factory=list)
    resources: list[HookResource] = Field(default_factory=list)  # chart test hooks' supporting objects
    refused_hooks: list[str] = Field(default_factory=list)  # hooks we refuse to create, one line each
    hook_service_accounts: frozenset[str] = frozenset()  # ServiceAccounts the hook set creates
    readiness: ReadinessSpec = Field(default_factory=ReadinessSpec)  # the gate before the first test pod
    rollout_objects: list[ObjectKey] = Field(default_factory=list)  # what the gate waits for
    notes: list[str] = Field(default_factory=list)  # worth a Warning Event on the run (never a value)
    on_failure: OnFailure = OnFailure.NONE  # a Failed run rolls the release back (core/outcomes/rollback.py)
    managed_by: ManagedBy | None = None  # the Flux HelmRelease labelled on its objects (core/sources/flux.py)
    server_side_apply: bool = False  # hook objects applied server-side, as Helm 4 does for this release


def apply_pod_policy(
    test: PlannedTest, *, level: podpolicy.PodSecurityLevel, accounts: Set[str]
) -> PlannedTest:
    """The test with `policy_violation` (one line, field paths only) and `token_allowed` filled in."""
    violations = podpolicy.check_pod_spec(test.pod_spec, level=level, annotations=test.annotations)
    violations += podpolicy.check_service_account(test.pod_spec, allowed_accounts=accounts)
    update = {
        "policy_violation": podpolicy.describe(violations),
        "token_allowed": podpolicy.token_allowed(test.pod_spec, allowed_accounts=accounts),
    }
    return test.model_copy(update=update)


@dataclass
class _UsedSuites:
    """What the matching suites add to a plan, in name order."""

    tests: list[PlannedTest] = field(default_factory=list)
    specs: list[SuiteSpec] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    problems: list[SuiteProblem] = field(default_factory=list)
    image_tag: str | None = None  # the first used suite (by name) that names its own values path


def _plan_suites(
    release: Release,
    suites: Sequence[Suite],
    *,
    values_path: str,
    default_timeout: int,
    allowed_domains: frozenset[str] | None,
    guard: Callable[[str], AbstractContextManager[None]],
) -> _UsedSuites:
    used = _UsedSuites()
    for suite in sorted(suites, key=lambda s: s.name):
        try:
            with guard(suite.name):
                planned = plan_suite(
                    suite,
                    release,
                    values_path=values_path,
                    default_timeout=default_timeout,
                    allowed_domains=allowed_domains,
                )
        except SuiteInvalid as e:
            used.problems.append(SuiteProblem(suite=suite.name, message=e.message))
            continue
        if planned is None:
            continue
        spec, tag, tests = planned
        used.tests += tests
        if spec.image_tag.values_path and used.image_tag is None:
            used.image_tag = tag
        used.specs.append(spec)
        used.names.append(suite.name)
    return used


def _gate(plan: Plan, release: Release) -> None:
    """The objects the readiness gate waits for; a manifest it cannot read turns the gate off (noted)."""
    if plan.readiness.mode != ReadinessMode.ROLLOUT:
        return
    try:
        plan.rollout_objects = list_rollout_objects(release.manifest, namespace=release.namespace)
    except ReleaseDecodeError as e:  # the gate cannot see the rollout: say so, and do not wait blind
        plan.notes.append(f"readiness gate off: {e}")
        plan.readiness = ReadinessSpec(mode=ReadinessMode.NONE)


def _checked_tests(
    hooks: HookSet, used: _UsedSuites, *, level: podpolicy.PodSecurityLevel, test_accounts: frozenset[str]
) -> list[PlannedTest]:
    """Hooks' tests then suites' (names made unique), each checked against the pod security `level`;
    a test may name only a ServiceAccount in `test_accounts` (a chart hook also those its hooks create)."""
    hook_accounts = test_accounts | hooks.service_accounts
    return [
        apply_pod_policy(t, level=level, accounts=hook_accounts if t.source == "hook" else test_accounts)
        for t in unique_names([*hooks.tests, *used.tests])
    ]


def build_plan(
    release: Release,
    *,
    suites: Sequence[Suite],
    image_tag_values_path: str,
    run_chart_hooks: bool,
    default_timeout_seconds: int,
    pod_security: str = podpolicy.PodSecurityLevel.BASELINE,
    test_accounts: frozenset[str] = frozenset(),
    mail_allowed_domains: frozenset[str] | None = None,
    suite_guard: Callable[[str], AbstractContextManager[None]] | None = None,
    readiness: ReadinessMode = ReadinessMode.ROLLOUT,
    ready_timeout_seconds: int = 600,
    rollback_on_failure: bool = False,
) -> Plan:
    """Hooks first, then the matching suites in name order; a bad suite is a problem, not an error. The
    run's image tag is the operator default's, unless a used suite names its own values path (the
    first such suite, by name, wins). `mail_allowed_domains` (None = mail off) bounds the suites' report
    recipients. `suite_guard(name)` wraps the planning of each suite: the sandbox passes one that turns
    a suite running past its time into SuiteInvalid (core itself sets no timers).
    """
    level = podpolicy.PodSecurityLevel(pod_security)
    hooks = build_hook_set(release, default_timeout=default_timeout_seconds) if run_chart_hooks else HookSet()
    used = _plan_suites(
        release,
        suites,
        values_path=image_tag_values_path,
        default_timeout=default_timeout_seconds,
        allowed_domains=mail_allowed_domains,
        guard=suite_guard or (lambda _name: contextlib.nullcontext()),
    )
    default_tag = resolve_image_tag(release.values, image_tag_values_path, release.app_version)
    plan = Plan(
        image_tag=default_tag if used.image_tag is None else used.image_tag,
        tests=_checked_tests(hooks, used, level=level, test_accounts=test_accounts),
        report=merge_reports(used.specs),
        used_suites=used.names,
        problems=used.problems,
        resources=hooks.resources,
        refused_hooks=hooks.refused,
        hook_service_accounts=hooks.service_accounts,
        readiness=_merge_readiness(
            used.specs, readiness, ready_timeout_seconds, chart_tests=bool(hooks.tests)
        ),
        on_failure=decide_on_failure(release, used.specs, enabled=rollback_on_failure),
        managed_by=gitops.find_flux_owner(release.manifest),
        server_side_apply=release.apply_method == names.HELM_APPLY_METHOD_SSA,
    )
    _gate(plan, release)
    return plan


def leave_chart_tests_to_flux(plan: Plan) -> Plan:
    """The chart's test hooks become Flux's (source `flux`: never created here, their outcome read from the
    HelmRelease), without the objects they rely on: Flux runs them itself (`spec.test.enable`), under the
    same names; running them twice makes each side delete the other's pods."""
    if plan.managed_by is None:
        return plan
    flux = {"source": names.TEST_SOURCE_FLUX, "retries": 0, "policy_violation": "", "blocked": ""}
    return plan.model_copy(
        update={
            "tests": [t.model_copy(update=flux) if t.source == "hook" else t for t in plan.tests],
            "resources": [],
            "refused_hooks": [],
            "hook_service_accounts": frozenset(),
            "managed_by": plan.managed_by.model_copy(update={"tests": True}),
        }
    )


def _merge_readiness(
    specs: Sequence[SuiteSpec], mode: ReadinessMode, timeout: int, *, chart_tests: bool
) -> ReadinessSpec:
    """Off when the setting says so, or when every used suite turns it off and the chart has no tests of
    its own; the longest timeout asked for wins."""
    modes = [s.readiness.mode for s in specs]
    if mode == ReadinessMode.NONE or (
        modes and not chart_tests and all(m == ReadinessMode.NONE for m in modes)
    ):
        return ReadinessSpec(mode=ReadinessMode.NONE, timeout_seconds=timeout)
    timeouts = [s.readiness.timeout_seconds for s in specs if s.readiness.timeout_seconds]
    return ReadinessSpec(mode=ReadinessMode.ROLLOUT, timeout_seconds=max([timeout, *timeouts]))
