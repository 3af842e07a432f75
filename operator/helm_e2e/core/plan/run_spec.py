"""A planned run's spec (pure): what was deployed (never its values), its tests, report and gate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helm_e2e.core.model.release import Release
from helm_e2e.core.model.run import HookObject, ReleaseRef, RunRequest, RunSpec, TestSource
from helm_e2e.core.plan.build import Plan
from helm_e2e.core.sources import flux


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


def build_revision_run_spec(
    release: Release,
    plan: Plan,
    *,
    secret_meta: Mapping[str, Any],
    deadline_seconds: int,
    default_retries: int,
    attempt: int | None = None,
    request: RunRequest | None = None,
) -> RunSpec:
    """A Helm revision's run: the plan, the Secret it came from (uid: a run is worked on only against that
    very one), the commit the deploy carries; `attempt` (>1: a re-run) and the `request` that asked."""
    spec = build_run_spec(
        release,
        plan,
        deadline_seconds=deadline_seconds,
        default_retries=default_retries,
        secret_uid=str(secret_meta.get("uid") or ""),
        commit=flux.find_commit(
            labels=secret_meta.get("labels") or {}, chart_annotations=release.chart_annotations
        ),
    )
    return spec.model_copy(
        update={"attempt": attempt if attempt and attempt > 1 else None, "request": request}
    )
