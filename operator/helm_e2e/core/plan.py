"""Release + chart test hooks + E2ESuites → planned tests → Pod manifests (pure).

Suite templates are rendered with a sandboxed Jinja2 environment and StrictUndefined: an unknown
variable, a syntax error, a sandbox violation or any other error raised by template code makes that
suite invalid (a problem entry), never an exception that stops the hooks or the other suites.
Error messages name the test, the field path and the variable, never a rendered value.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import jinja2
import yaml
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, Field, ValidationError

from ..errors import SuiteInvalid
from . import names
from .models import Hook, Release, ReleaseRef, ReportSpec, Run, RunSpec, Suite, SuiteSpec, TestSource
from .naming import MAX_NAME, build_pod_name, label_value, sanitize_test_name
from .release import resolve_image_tag

TEST_HOOK_EVENTS = frozenset({"test", "test-success"})  # test-success: Helm 2's name, still accepted
TIMEOUT_ANNOTATION = names.TIMEOUT_ANNOTATION
RETRIES_ANNOTATION = f"{names.GROUP}/retries"
MAX_RETRIES = 10
MAX_TEMPLATE_DEPTH = 64  # nesting of a suite's pod template; deeper is refused, not recursed into
MAX_REPEAT = 100_000  # longest string/list a template may build with `*` (as jinja2's MAX_RANGE)
MAX_EXPONENT = 1_024


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus a guard on `*` and `**` so a template cannot exhaust memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent larger than {MAX_EXPONENT}")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * times > MAX_REPEAT:
                    raise SecurityError(f"repetition longer than {MAX_REPEAT}")
        return super().call_binop(context, operator, left, right)


_ENV = _Sandbox(undefined=jinja2.StrictUndefined, autoescape=False)


class PlannedTest(BaseModel):
    name: str
    source: str  # "hook" | "suite/<name>"
    timeout_seconds: int
    pod_spec: dict[str, Any]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    policy_violation: str = ""  # non-empty: the pod policy forbids this pod (never created; the test errors)
    retries: int | None = None  # further attempts after a Failed one; None: the operator default


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


def _mapping(node: Any) -> Mapping[str, Any]:
    return node if isinstance(node, Mapping) else {}


def _strings(node: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in _mapping(node).items() if v is not None}


def _timeout(annotations: Mapping[str, str], default: int) -> int:
    try:
        value = int(annotations.get(TIMEOUT_ANNOTATION, "").strip())
    except ValueError:
        return default
    return value if value > 0 else default


def _retries(annotations: Mapping[str, str]) -> int | None:
    """`helm-e2e.dev/retries` on a chart test hook: 0 to 10; absent or invalid = the operator default."""
    try:
        value = int(annotations.get(RETRIES_ANNOTATION, "").strip())
    except ValueError:
        return None
    return value if 0 <= value <= MAX_RETRIES else None


def _hook_test(hook: Hook, default_timeout: int) -> tuple[PlannedTest | None, list[str]]:
    """One chart test hook → a planned test (or None) and notes worth an Event."""
    try:
        doc = yaml.safe_load(hook.manifest)
    except (yaml.YAMLError, ValueError, RecursionError):  # ValueError: e.g. an impossible timestamp
        return None, [f"test hook {hook.name}: manifest is not valid YAML, skipped"]
    if not isinstance(doc, Mapping):
        return None, [f"test hook {hook.name}: manifest is not a Kubernetes object, skipped"]
    kind, spec, notes = doc.get("kind"), _mapping(doc.get("spec")), []
    if kind == "Job":
        spec = _mapping(_mapping(spec.get("template")).get("spec"))
        notes.append(f"test hook {hook.name}: Job runs as a single pod from its template")
    elif kind != "Pod":
        return None, [f"test hook {hook.name}: kind {kind} is not run (only Pod and Job), skipped"]
    if not spec:
        return None, [*notes, f"test hook {hook.name}: no pod spec, skipped"]
    meta = _mapping(doc.get("metadata"))
    annotations = {
        k: v for k, v in _strings(meta.get("annotations")).items() if not k.startswith("helm.sh/hook")
    }
    test = PlannedTest(
        name=sanitize_test_name(str(meta.get("name") or hook.name)),
        source="hook",
        timeout_seconds=_timeout(annotations, default_timeout),
        pod_spec=dict(spec),
        labels=_strings(meta.get("labels")),
        annotations=annotations,
        retries=_retries(annotations),
    )
    return test, notes


def _hook_tests(release: Release, default_timeout: int) -> tuple[list[PlannedTest], list[str]]:
    tests: list[PlannedTest] = []
    notes: list[str] = []
    for hook in release.hooks:
        if TEST_HOOK_EVENTS.isdisjoint(hook.events):
            continue
        test, hook_notes = _hook_test(hook, default_timeout)
        tests += [test] if test else []
        notes += hook_notes
    return tests, notes


# --- suites -----------------------------------------------------------------------------------------


def _loc(loc: Sequence[int | str]) -> str:
    return "spec" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def validate_suite(suite: Suite) -> SuiteSpec:
    """The suite's spec as a SuiteSpec, or SuiteInvalid naming the first bad field in one line."""
    try:
        return SuiteSpec.model_validate(suite.spec)
    except ValidationError as e:
        err = e.errors(include_url=False, include_input=False)[0]
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        message = " ".join(f"{_loc(err['loc'])}: {err['msg']}{more}".split())
        raise SuiteInvalid(suite.name, message) from e


def suite_matches(spec: SuiteSpec, release: Release) -> bool:
    """No names and no charts = every release in the namespace; else name OR chart; and the trigger."""
    names, charts = spec.releases.names, spec.releases.charts
    selected = (not names and not charts) or release.name in names or release.chart_name in charts
    return selected and release.trigger in spec.triggers


@functools.lru_cache(maxsize=1024)
def _compile(source: str) -> jinja2.Template:
    return _ENV.from_string(source)


def _render_text(text: str, context: Mapping[str, Any], path: str) -> str:
    if "{" not in text:  # no Jinja syntax: nothing to render (most leaves of a pod spec)
        return text
    try:
        return _compile(text).render(context)
    except jinja2.TemplateError as e:  # UndefinedError, TemplateSyntaxError, SecurityError
        raise SuiteInvalid("", f"{path}: {e.message or type(e).__name__}") from e
    except Exception as e:  # template code may raise anything (1/0, 'a' + 1): report the type only,
        raise SuiteInvalid("", f"{path}: {type(e).__name__} while rendering") from e  # never a value


def _render(node: Any, context: Mapping[str, Any], path: str, depth: int = 0) -> Any:
    """Every string leaf (dict values, list items) rendered; keys and other scalars kept as they are."""
    if depth > MAX_TEMPLATE_DEPTH:
        raise SuiteInvalid("", f"{path}: nested deeper than {MAX_TEMPLATE_DEPTH} levels")
    if isinstance(node, str):
        return _render_text(node, context, path)
    if isinstance(node, Mapping):
        return {k: _render(v, context, f"{path}.{k}", depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [_render(v, context, f"{path}[{i}]", depth + 1) for i, v in enumerate(node)]
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
        "values": release.values,  # the immutable sandbox forbids update(), append(), ...
    }
    if image_tag:  # missing tag: left undefined so a template using it fails with a clear message
        ctx["image_tag"] = image_tag
    return ctx


def _suite_tests(
    suite: Suite, spec: SuiteSpec, release: Release, *, image_tag: str, values_path: str, default_timeout: int
) -> list[PlannedTest]:
    """All of the suite's tests, rendered, or SuiteInvalid for the first one that fails."""
    context = _context(release, image_tag)
    tests = []
    for i, test in enumerate(spec.tests):
        try:
            pod_spec = _render(test.template, context, f"tests[{i}].template")
            meta = _render(test.metadata.model_dump(), context, f"tests[{i}].metadata")
        except SuiteInvalid as e:
            hint = (
                f" (no image tag: values path {values_path!r} is empty and the chart has no appVersion)"
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
    flags = [s.report.only_on_failure for s in specs if "report" in s.model_fields_set]
    return ReportSpec(to=to, only_on_failure=bool(flags) and all(flags))


def build_plan(
    release: Release,
    *,
    suites: Sequence[Suite],
    image_tag_values_path: str,
    run_chart_hooks: bool,
    default_timeout_seconds: int,
) -> Plan:
    """Hooks first, then the matching suites in name order; a bad suite is a problem, not an error.

    The run's image tag is the operator default's, unless a used suite names its own values path
    (the first such suite, by name, wins).
    """
    tests, notes = _hook_tests(release, default_timeout_seconds) if run_chart_hooks else ([], [])
    default_tag = resolve_image_tag(release.values, image_tag_values_path, release.app_version)
    plan = Plan(image_tag=default_tag, hook_notes=notes)
    used: list[SuiteSpec] = []
    for suite in sorted(suites, key=lambda s: s.name):
        try:
            spec = validate_suite(suite)
            if not suite_matches(spec, release):
                continue
            path = spec.image_tag.values_path or image_tag_values_path
            tag = resolve_image_tag(release.values, path, release.app_version)
            tests += _suite_tests(
                suite,
                spec,
                release,
                image_tag=tag,
                values_path=path,
                default_timeout=default_timeout_seconds,
            )
        except SuiteInvalid as e:
            plan.problems.append(SuiteProblem(suite=suite.name, message=e.message))
            continue
        if spec.image_tag.values_path and not any(s.image_tag.values_path for s in used):
            plan.image_tag = tag
        used.append(spec)
        plan.used_suites.append(suite.name)
    plan.tests = _unique(tests)
    plan.report = _merge_reports(used)
    return plan


def build_run_spec(
    release: Release, plan: Plan, *, deadline_seconds: int, default_retries: int = 0
) -> RunSpec:
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
    tests = [
        TestSource(
            name=t.name,
            source=t.source,
            timeout_seconds=t.timeout_seconds,
            retries=(default_retries if t.retries is None else t.retries) or None,
        )
        for t in plan.tests
    ]
    return RunSpec(release=ref, tests=tests, deadline_seconds=deadline_seconds, report=plan.report)


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
    if "serviceAccountName" not in spec:  # least privilege: no API token unless the test asks for one
        spec.setdefault("automountServiceAccountToken", False)
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
            "ownerReferences": [
                {
                    "apiVersion": names.API_VERSION,
                    "kind": names.RUN_KIND,
                    "name": run.name,
                    "uid": run.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": _pod_spec(run, test),
    }
