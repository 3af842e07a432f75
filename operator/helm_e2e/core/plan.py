"""Release + chart test hooks + E2ESuites → planned tests → Pod manifests (pure).

Suite templates are rendered with a sandboxed Jinja2 environment and StrictUndefined: an unknown
variable, a syntax error or a sandbox violation makes that suite invalid (a problem entry), never an
exception that stops the hooks or the other suites.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import jinja2
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, Field, ValidationError

from ..errors import SuiteInvalid
from .models import Release, ReleaseRef, ReportSpec, Run, RunSpec, Suite, SuiteSpec, TestSource
from .naming import build_pod_name, label_value, sanitize
from .release import resolve_image_tag

TEST_HOOK_EVENTS = {"test", "test-success"}
TIMEOUT_ANNOTATION = "helm-e2e.dev/timeout-seconds"
_ENV = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)


class PlannedTest(BaseModel):
    name: str
    source: str  # "hook" | "suite/<name>"
    timeout_seconds: int
    pod_spec: dict[str, Any]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class SuiteProblem(BaseModel):
    suite: str
    message: str


class Plan(BaseModel):
    image_tag: str
    tests: list[PlannedTest] = Field(default_factory=list)
    report: ReportSpec = Field(default_factory=ReportSpec)
    used_suites: list[str] = Field(default_factory=list)
    problems: list[SuiteProblem] = Field(default_factory=list)
    hook_notes: list[str] = Field(default_factory=list)


# --- chart test hooks -----------------------------------------------------------------------------


def _hook_tests(release: Release, default_timeout: int) -> tuple[list[PlannedTest], list[str]]:
    tests, notes = [], []
    for hook in release.hooks:
        if not TEST_HOOK_EVENTS & set(hook.events):
            continue
        try:
            doc = yaml.safe_load(hook.manifest)
        except yaml.YAMLError:
            notes.append(f"test hook {hook.name}: manifest is not valid YAML")
            continue
        kind = doc.get("kind") if isinstance(doc, dict) else None
        spec = (doc or {}).get("spec") if isinstance(doc, dict) else None
        if kind == "Job" and isinstance(spec, dict):
            spec = (spec.get("template") or {}).get("spec")
            notes.append(f"test hook {hook.name}: Job runs as a single pod from its template")
        elif kind != "Pod":
            notes.append(f"test hook {hook.name}: kind {kind} is not run (only Pod and Job)")
            continue
        if not isinstance(spec, dict):
            notes.append(f"test hook {hook.name}: no pod spec")
            continue
        meta = doc.get("metadata") or {}
        annotations = {
            str(k): str(v)
            for k, v in (meta.get("annotations") or {}).items()
            if not str(k).startswith("helm.sh/hook")
        }
        timeout = annotations.get(TIMEOUT_ANNOTATION, "")
        tests.append(
            PlannedTest(
                name=sanitize(str(meta.get("name") or hook.name)),
                source="hook",
                timeout_seconds=int(timeout) if timeout.isdigit() and int(timeout) > 0 else default_timeout,
                pod_spec=spec,
                labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
                annotations=annotations,
            )
        )
    return tests, notes


# --- suites -----------------------------------------------------------------------------------------


def validate_suite(suite: Suite) -> SuiteSpec:
    try:
        return SuiteSpec.model_validate(suite.spec)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "spec"
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise SuiteInvalid(suite.name, f"spec.{where}: {err['msg']}{more}") from e


def suite_matches(spec: SuiteSpec, release: Release) -> bool:
    names, charts = spec.releases.names, spec.releases.charts
    selected = (not names and not charts) or release.name in names or release.chart_name in charts
    return selected and release.trigger in spec.triggers


@functools.lru_cache(maxsize=1024)
def _compile(source: str) -> jinja2.Template:
    return _ENV.from_string(source)


def _render(node: Any, context: Mapping[str, Any], path: str) -> Any:
    if isinstance(node, str):
        if "{" not in node:  # no Jinja syntax: nothing to render (most leaves of a pod spec)
            return node
        try:
            return _compile(node).render(context)
        except jinja2.TemplateError as e:  # UndefinedError, TemplateSyntaxError, SecurityError
            raise SuiteInvalid("", f"{path}: {e.message or type(e).__name__}") from e
    if isinstance(node, Mapping):
        return {k: _render(v, context, f"{path}.{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [_render(v, context, f"{path}[{i}]") for i, v in enumerate(node)]
    return node


def _context(release: Release, image_tag: str) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "release": {
            "name": release.name,
            "namespace": release.namespace,
            "revision": release.revision,
            "trigger": release.trigger.value,
        },
        "chart": {
            "name": release.chart_name,
            "version": release.chart_version,
            "app_version": release.app_version,
        },
        "app_version": release.app_version,
        "values": release.values,
    }
    if image_tag:  # missing tag: left undefined so a template using it fails with a clear message
        ctx["image_tag"] = image_tag
    return ctx


def _suite_tests(
    suite: Suite, spec: SuiteSpec, release: Release, *, values_path: str, default_timeout: int
) -> list[PlannedTest]:
    path = spec.image_tag.values_path or values_path
    image_tag = resolve_image_tag(release.values, path, release.app_version)
    context = _context(release, image_tag)
    tests = []
    for i, test in enumerate(spec.tests):
        try:
            pod_spec = _render(test.template, context, f"tests[{i}].template")
            meta = _render(test.metadata.model_dump(), context, f"tests[{i}].metadata")
        except SuiteInvalid as e:
            hint = (
                f" (no image tag: values path {path!r} is empty and the chart has no appVersion)"
                if not image_tag and "image_tag" in e.message
                else ""
            )
            raise SuiteInvalid(suite.name, f"test {test.name}: {e.message}{hint}") from e
        tests.append(
            PlannedTest(
                name=test.name,
                source=f"suite/{suite.name}",
                timeout_seconds=test.timeout_seconds or default_timeout,
                pod_spec=pod_spec,
                labels=meta["labels"],
                annotations=meta["annotations"],
            )
        )
    return tests


def _unique(tests: list[PlannedTest]) -> list[PlannedTest]:
    seen: set[str] = set()
    out = []
    for test in tests:
        name, n = test.name, 1
        while name in seen:
            n += 1
            name = f"{test.name}-{n}"
        seen.add(name)
        out.append(test if name == test.name else test.model_copy(update={"name": name}))
    return out


def build_plan(
    release: Release,
    *,
    suites: Sequence[Suite],
    image_tag_values_path: str,
    run_chart_hooks: bool,
    default_timeout_seconds: int,
) -> Plan:
    tests, notes = _hook_tests(release, default_timeout_seconds) if run_chart_hooks else ([], [])
    plan = Plan(
        image_tag=resolve_image_tag(release.values, image_tag_values_path, release.app_version),
        hook_notes=notes,
    )
    recipients: list[str] = []
    only_on_failure: list[bool] = []
    for suite in sorted(suites, key=lambda s: s.name):
        try:
            spec = validate_suite(suite)
            if not suite_matches(spec, release):
                continue
            if spec.image_tag.values_path:
                plan.image_tag = resolve_image_tag(
                    release.values, spec.image_tag.values_path, release.app_version
                )
            tests += _suite_tests(
                suite,
                spec,
                release,
                values_path=image_tag_values_path,
                default_timeout=default_timeout_seconds,
            )
        except SuiteInvalid as e:
            plan.problems.append(SuiteProblem(suite=suite.name, message=e.message))
            continue
        plan.used_suites.append(suite.name)
        recipients += [r for r in spec.report.to if r.lower() not in {x.lower() for x in recipients}]
        only_on_failure.append(spec.report.only_on_failure)
    plan.tests = _unique(tests)
    plan.report = ReportSpec(to=recipients, only_on_failure=bool(only_on_failure) and all(only_on_failure))
    return plan


def build_run_spec(release: Release, plan: Plan, *, deadline_seconds: int) -> RunSpec:
    ref = ReleaseRef(
        name=release.name,
        namespace=release.namespace,
        revision=release.revision,
        chart=release.chart_name,
        chart_version=release.chart_version,
        app_version=release.app_version,
        image_tag=plan.image_tag,
        trigger=release.trigger,
        deployed_at=release.last_deployed,
    )
    tests = [TestSource(name=t.name, source=t.source, timeout_seconds=t.timeout_seconds) for t in plan.tests]
    return RunSpec(release=ref, tests=tests, deadline_seconds=deadline_seconds, report=plan.report)


def _with_env(container: Mapping[str, Any], env: list[dict[str, str]]) -> dict[str, Any]:
    out = dict(container)
    existing = list(out.get("env") or [])
    names = {e.get("name") for e in existing if isinstance(e, Mapping)}
    out["env"] = existing + [e for e in env if e["name"] not in names]  # the template's own value wins
    return out


def build_pod_manifest(*, run: Run, test: PlannedTest) -> dict[str, Any]:
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
    if "serviceAccountName" not in spec:  # least privilege: no API token unless the test asks for one
        spec.setdefault("automountServiceAccountToken", False)
    deadline = spec.get("activeDeadlineSeconds")
    if not isinstance(deadline, int) or deadline > test.timeout_seconds:
        spec["activeDeadlineSeconds"] = test.timeout_seconds
    labels = {
        **test.labels,
        "app.kubernetes.io/managed-by": "helm-e2e",
        "helm-e2e.dev/run": label_value(run.name),
        "helm-e2e.dev/release": label_value(ref.name),
        "helm-e2e.dev/revision": str(ref.revision),
        "helm-e2e.dev/test": label_value(test.name),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": build_pod_name(run.name, test.name),
            "namespace": run.namespace,
            "labels": labels,
            "annotations": {**test.annotations, "helm-e2e.dev/source": test.source},
            "ownerReferences": [
                {
                    "apiVersion": "helm-e2e.dev/v1alpha1",
                    "kind": "E2ERun",
                    "name": run.name,
                    "uid": run.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }
