"""E2ESuites for one release (pure): schema check, selection, rendering of their tests, merged reports.

A suite's templates are rendered by core/plan/templating.py; any error of a suite is SuiteInvalid naming
the test and field path, never a rendered value (build.build_plan turns it into a problem of the plan).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from helm_e2e.core.model.dns_names import MAX_NAME
from helm_e2e.core.model.release import Release, Trigger
from helm_e2e.core.model.run import ReportSpec
from helm_e2e.core.model.suite import Suite, SuiteSpec
from helm_e2e.core.plan import recipients
from helm_e2e.core.plan.planned_test import PlannedTest
from helm_e2e.core.sources import argocd
from helm_e2e.core.sources.helm_secret import resolve_image_tag
from helm_e2e.errors import SuiteInvalid


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


def suite_tests(
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


def unique_names(tests: list[PlannedTest]) -> list[PlannedTest]:
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


def merge_reports(specs: Sequence[SuiteSpec]) -> ReportSpec:
    """Recipients de-duplicated (case-insensitive, first spelling kept); onlyOnFailure only if every
    suite that sets a report asks for it."""
    to: list[str] = []
    for spec in specs:
        to += [r for r in spec.report.to if r.lower() not in {x.lower() for x in to}]
    webhooks = list(dict.fromkeys(w for spec in specs for w in spec.report.webhooks))
    flags = [s.report.only_on_failure for s in specs if "report" in s.model_fields_set]
    return ReportSpec(to=to, only_on_failure=bool(flags) and all(flags), webhooks=webhooks)


def plan_suite(
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
    tests = suite_tests(
        suite, spec, release, image_tag=tag, values_path=path, default_timeout=default_timeout
    )
    return spec, tag, tests
