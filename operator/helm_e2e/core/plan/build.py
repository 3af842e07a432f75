"""Release + chart test hooks + E2ESuites → planned tests → Pod manifests (pure).

Suite templates are rendered by core/plan/templating.py (bounded, sandboxed Jinja2, StrictUndefined): an
unknown variable, a syntax error, a sandbox violation or any other error raised by template code makes
that suite invalid (a problem entry), never an exception that stops the hooks or the other suites.
Error messages name the test, the field path and the kind of error, never a rendered value.
Every planned pod is checked against the Pod Security Standards level and the ServiceAccount allow-list
(core/plan/pod_security.py); a violating test is still planned, with `policy_violation` set, never
created.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Mapping, Sequence, Set
from contextlib import AbstractContextManager
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from helm_e2e.core.model import names
from helm_e2e.core.model.dns_names import MAX_NAME, build_pod_name, label_value
from helm_e2e.core.model.run_codec import build_owner_reference
from helm_e2e.core.model.schema import (
    HookObject,
    ManagedBy,
    OnFailure,
    ReadinessMode,
    ReadinessSpec,
    Release,
    ReleaseRef,
    ReportSpec,
    Run,
    RunSpec,
    Suite,
    SuiteSpec,
    TestSource,
    Trigger,
)
from helm_e2e.core.plan import pod_security as podpolicy
from helm_e2e.core.plan import recipients
from helm_e2e.core.plan.chart_hooks import HookResource, HookSet, build_hook_set
from helm_e2e.core.plan.on_failure import decide_on_failure
from helm_e2e.core.plan.planned_test import (
    PlannedTest as PlannedTest,  # re-exported: callers use plan.PlannedTest
)
from helm_e2e.core.plan.readiness import ObjectKey, list_rollout_objects
from helm_e2e.core.sources import argocd
from helm_e2e.core.sources import flux as gitops
from helm_e2e.core.sources.helm_secret import resolve_image_tag
from helm_e2e.errors import ReleaseDecodeError, SuiteInvalid

TIMEOUT_ANNOTATION = names.TIMEOUT_ANNOTATION


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


# --- suites -----------------------------------------------------------------------------------------


def _loc(loc: Sequence[int | str]) -> str:
    return "spec" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def validate_suite(suite: Suite, *, allowed_domains: frozenset[str] | None = None) -> SuiteSpec:
    """The suite's spec as a SuiteSpec, or SuiteInvalid naming the first bad field in one line.

    With `allowed_domains` (None = mail is off, nothing to check), every report.to address must be a
    plain address in one of them."""
    try:
        spec = SuiteSpec.model_validate(suite.spec)
    except ValidationError as e:
        err = e.errors(include_url=False, include_input=False)[0]
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        message = " ".join(f"{_loc(err['loc'])}: {err['msg']}{more}".split())
        raise SuiteInvalid(suite.name, message) from e
    if allowed_domains is not None:
        problem = recipients.check_recipients(spec.report.to, allowed_domains=allowed_domains)
        if problem:
            raise SuiteInvalid(suite.name, f"spec.{problem}")
    return spec


def suite_matches(spec: SuiteSpec, release: Release) -> bool:
    """No names and no charts = every release in the namespace; else name OR chart; and the trigger. An
    Argo CD sync only by `spec.applications`; a suite that names applications alone tests no Helm release."""
    if release.trigger == Trigger.SYNC:
        return argocd.selects(spec.applications, app=release.name, labels=release.app_labels)
    if spec.applications is not None and "releases" not in spec.model_fields_set:
        return False
    names, charts = spec.releases.names, spec.releases.charts
    selected = (not names and not charts) or release.name in names or release.chart_name in charts
    return selected and release.trigger in spec.triggers


def _suite_tests(
    suite: Suite, spec: SuiteSpec, release: Release, *, image_tag: str, values_path: str, default_timeout: int
) -> list[PlannedTest]:
    """All of the suite's tests, rendered, or SuiteInvalid for the first one that fails."""
    from helm_e2e.core.plan import templating  # jinja2: imported where suites are rendered (the sandbox)

    context = templating.build_context(release, image_tag)
    budget = templating.OutputBudget()
    tests = []
    for i, test in enumerate(spec.tests):
        try:
            pod_spec = templating.render_tree(test.template, context, f"tests[{i}].template", budget=budget)
            meta = templating.render_tree(
                test.metadata.model_dump(), context, f"tests[{i}].metadata", budget=budget
            )
        except SuiteInvalid as e:
            hint = (
                f" (no image tag: values path {values_path!r} is empty and the chart has no appVersion)"
                if not image_tag and "image_tag" in e.message
                else ""
            )
            raise SuiteInvalid(suite.name, f"test {test.name}: {e.message}{hint}") from None
        tests.append(
            PlannedTest(
                name=test.name,
                source=f"suite/{suite.name}",
                timeout_seconds=test.timeout_seconds or default_timeout,
                pod_spec=pod_spec,
                labels=meta["labels"],
                annotations=meta["annotations"],
                retries=test.retries,
            )
        )
    return tests


def _unique(tests: list[PlannedTest]) -> list[PlannedTest]:
    """Later tests with a name already taken get `-2`, `-3`, ... (still a DNS label of ≤ 63)."""
    seen: set[str] = set()
    out = []
    for test in tests:
        name, n = test.name, 1
        while name in seen:
            n += 1
            name = f"{test.name[: MAX_NAME - len(str(n)) - 1].rstrip('-')}-{n}"
        seen.add(name)
        out.append(test if name == test.name else test.model_copy(update={"name": name}))
    return out


def _merge_reports(specs: Sequence[SuiteSpec]) -> ReportSpec:
    """Recipients de-duplicated (case-insensitive, first spelling kept); onlyOnFailure only if every
    suite that sets a report asks for it."""
    to: list[str] = []
    for spec in specs:
        to += [r for r in spec.report.to if r.lower() not in {x.lower() for x in to}]
    webhooks = list(dict.fromkeys(w for spec in specs for w in spec.report.webhooks))
    flags = [s.report.only_on_failure for s in specs if "report" in s.model_fields_set]
    return ReportSpec(to=to, only_on_failure=bool(flags) and all(flags), webhooks=webhooks)


def _plan_suite(
    suite: Suite,
    release: Release,
    *,
    values_path: str,
    default_timeout: int,
    allowed_domains: frozenset[str] | None,
) -> tuple[SuiteSpec, str, list[PlannedTest]] | None:
    """(spec, image tag, tests) of a suite that matches the release; None if it does not match."""
    spec = validate_suite(suite, allowed_domains=allowed_domains)
    if not suite_matches(spec, release):
        return None
    path = spec.image_tag.values_path or values_path
    tag = resolve_image_tag(release.values, path, release.app_version)
    tests = _suite_tests(
        suite, spec, release, image_tag=tag, values_path=path, default_timeout=default_timeout
    )
    return spec, tag, tests


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
    """Hooks first, then the matching suites in name order; a bad suite is a problem, not an error.

    The run's image tag is the operator default's, unless a used suite names its own values path
    (the first such suite, by name, wins). Every test is checked against `pod_security` and may name
    only a ServiceAccount in `test_accounts` (chart hooks also those their test hooks create);
    `mail_allowed_domains` (None = mail off) bounds the
    suites' report recipients. `suite_guard(name)` wraps the planning of each suite: the sandbox passes
    one that turns a suite running past its time into SuiteInvalid (core itself sets no timers).
    """
    level = podpolicy.PodSecurityLevel(pod_security)
    hooks = build_hook_set(release, default_timeout=default_timeout_seconds) if run_chart_hooks else HookSet()
    tests = list(hooks.tests)
    default_tag = resolve_image_tag(release.values, image_tag_values_path, release.app_version)
    plan = Plan(
        image_tag=default_tag,
        resources=hooks.resources,
        refused_hooks=hooks.refused,
        hook_service_accounts=hooks.service_accounts,
        server_side_apply=release.apply_method == names.HELM_APPLY_METHOD_SSA,
    )
    used: list[SuiteSpec] = []
    guard = suite_guard or (lambda _name: contextlib.nullcontext())
    for suite in sorted(suites, key=lambda s: s.name):
        try:
            with guard(suite.name):
                planned = _plan_suite(
                    suite,
                    release,
                    values_path=image_tag_values_path,
                    default_timeout=default_timeout_seconds,
                    allowed_domains=mail_allowed_domains,
                )
        except SuiteInvalid as e:
            plan.problems.append(SuiteProblem(suite=suite.name, message=e.message))
            continue
        if planned is None:
            continue
        spec, tag, suite_tests = planned
        tests += suite_tests
        if spec.image_tag.values_path and not any(s.image_tag.values_path for s in used):
            plan.image_tag = tag
        used.append(spec)
        plan.used_suites.append(suite.name)
    hook_accounts = test_accounts | hooks.service_accounts
    plan.tests = [
        apply_pod_policy(t, level=level, accounts=hook_accounts if t.source == "hook" else test_accounts)
        for t in _unique(tests)
    ]
    plan.report = _merge_reports(used)
    plan.on_failure = decide_on_failure(release, used, enabled=rollback_on_failure)
    plan.managed_by = gitops.find_flux_owner(release.manifest)
    plan.readiness = _merge_readiness(used, readiness, ready_timeout_seconds, chart_tests=bool(hooks.tests))
    if plan.readiness.mode == ReadinessMode.ROLLOUT:
        try:
            plan.rollout_objects = list_rollout_objects(release.manifest, namespace=release.namespace)
        except ReleaseDecodeError as e:  # the gate cannot see the rollout: say so, and do not wait blind
            plan.notes.append(f"readiness gate off: {e}")
            plan.readiness = ReadinessSpec(mode=ReadinessMode.NONE)
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


def build_release_ref(release: Release, plan: Plan, *, secret_uid: str, commit: str) -> ReleaseRef:
    """spec.release: what was deployed, never its values."""
    return ReleaseRef(
        secret_uid=secret_uid,
        name=release.name,
        namespace=release.namespace,
        revision=release.revision,
        chart=release.chart_name,
        chart_version=release.chart_version,
        app_version=release.app_version,
        image_tag=plan.image_tag,
        trigger=release.trigger,
        deployed_at=release.last_deployed,
        commit=commit or None,
        managed_by=plan.managed_by,
    )


def build_run_spec(
    release: Release,
    plan: Plan,
    *,
    deadline_seconds: int,
    default_retries: int = 0,
    secret_uid: str = "",
    commit: str = "",
) -> RunSpec:
    ref = build_release_ref(release, plan, secret_uid=secret_uid, commit=commit)
    tests = [
        TestSource(
            name=t.name,
            source=t.source,
            timeout_seconds=t.timeout_seconds,
            kind=t.kind,
            # retries re-create a test's pod; a Job test keeps the Job's own backoffLimit instead
            retries=((default_retries if t.retries is None else t.retries) if t.kind == "Pod" else 0) or None,
            log_on_success=t.log_on_success or None,
        )
        for t in plan.tests
    ]
    hook_objects = [
        HookObject(kind=r.kind, name=r.name, delete_policies=sorted(r.delete_policies))
        for r in plan.resources
    ]
    return RunSpec(
        release=ref,
        tests=tests,
        deadline_seconds=deadline_seconds,
        report=plan.report,
        hook_objects=hook_objects,
        # the gate waits within the run's deadline, whatever a suite asked for
        readiness=plan.readiness.model_copy(
            update={"timeout_seconds": min(plan.readiness.timeout_seconds, deadline_seconds)}
        ),
        on_failure=plan.on_failure,
    )


# --- pod manifests ------------------------------------------------------------------------------------


def _with_env(container: Any, env: list[dict[str, str]]) -> Any:
    if not isinstance(container, Mapping):
        return container  # malformed: left for the apiserver to reject with its own message
    out = dict(container)
    existing = list(out.get("env") or [])
    names = {e.get("name") for e in existing if isinstance(e, Mapping)}
    out["env"] = existing + [e for e in env if e["name"] not in names]  # the template's own value wins
    return out


def _pod_spec(run: Run, test: PlannedTest) -> dict[str, Any]:
    ref = run.spec.release
    env = [
        {"name": "HELM_E2E_RELEASE", "value": ref.name},
        {"name": "HELM_E2E_NAMESPACE", "value": ref.namespace},
        {"name": "HELM_E2E_REVISION", "value": str(ref.revision)},
        {"name": "HELM_E2E_IMAGE_TAG", "value": ref.image_tag},
        {"name": "HELM_E2E_CHART_VERSION", "value": ref.chart_version},
        {"name": "HELM_E2E_RUN", "value": run.name},
    ]
    spec = copy.deepcopy(test.pod_spec)
    for key in ("containers", "initContainers"):
        if isinstance(spec.get(key), list):
            spec[key] = [_with_env(c, env) for c in spec[key]]
    spec["restartPolicy"] = "Never"
    if not test.token_allowed:  # least privilege: no API token unless an allowed account is named
        spec["automountServiceAccountToken"] = False
    deadline = spec.get("activeDeadlineSeconds")
    keep = type(deadline) is int and 0 < deadline <= test.timeout_seconds
    if not keep:
        spec["activeDeadlineSeconds"] = test.timeout_seconds  # a smaller deadline of the template stays
    return spec


def build_pod_manifest(*, run: Run, test: PlannedTest) -> dict[str, Any]:
    """The v1 Pod for one test of a run: owned by the E2ERun, never restarted, labelled for the watch."""
    ref = run.spec.release
    labels = {
        **test.labels,
        names.MANAGED_BY_LABEL: names.MANAGED_BY,
        names.RUN_LABEL: label_value(run.name),
        names.RELEASE_LABEL: label_value(ref.name),
        names.REVISION_LABEL: str(ref.revision),
        names.TEST_LABEL: label_value(test.name),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": build_pod_name(run.name, test.name),
            "namespace": run.namespace,
            "labels": labels,
            "annotations": {**test.annotations, names.SOURCE_ANNOTATION: test.source},
            "ownerReferences": [build_owner_reference(run)],
        },
        "spec": _pod_spec(run, test),
    }
