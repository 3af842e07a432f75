"""What a run creates (pure): its chart's hook objects, its tests' pods and Jobs, and the artifacts collector
each test body gets once the shell minted its upload token; and the hook objects to delete at the end."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from helm_e2e.core.artifacts import rules
from helm_e2e.core.lifecycle.actions import Action, CreateHookObjects, CreateTest, Replanned
from helm_e2e.core.model import names
from helm_e2e.core.model.run import HookObject, Run
from helm_e2e.core.plan.build import PlannedTest
from helm_e2e.core.plan.chart_hooks import build_resource_manifest
from helm_e2e.core.results import retries as attempts
from helm_e2e.core.results.hook_jobs import build_job_manifest


def create_actions(
    run: Run, tests: Sequence[PlannedTest], plan: Replanned, collector: rules.CollectorSpec | None = None
) -> list[Action]:
    """The hook objects first (when a hook test is about to be created), then the tests' pods and Jobs,
    each with the collector to add (`collector`: the policy's; None when artifacts are off)."""
    actions: list[Action] = []
    at = attempts.current_attempts(run)
    hook_tests = tuple(t.name for t in tests if t.source == "hook")
    if hook_tests and (resources := plan.resources):
        bodies = tuple(build_resource_manifest(run, r) for r in resources)
        replace = tuple(names.HOOK_BEFORE_CREATION in r.delete_policies for r in resources)
        actions.append(CreateHookObjects(bodies, replace, hook_tests, plan.server_side_apply))
    for test in tests:
        body = (
            build_job_manifest(run=run, test=test)
            if test.kind == "Job"
            else attempts.build_attempt_pod(run=run, test=test, attempt=at.get(test.name, 1))
        )
        actions.append(CreateTest(test.name, test.kind, body, collector))
    return actions


def body_to_create(action: CreateTest, token: str | None) -> dict[str, Any]:
    """The body to create: with the collector sidecar and its upload `token` when the decision asked for
    one and the shell could mint the token (None: the store cannot be written; the test runs without)."""
    if action.collector is None or token is None:
        return action.body
    return rules.inject_collector(
        action.body, action.kind, dataclasses.replace(action.collector, token=token)
    )


def collector_unavailable(test: str, reason: str) -> tuple[str, str]:
    """Why `test` runs without its collector (its artifactsMessage) and the Warning Event's message."""
    why = f"artifacts not collected: the artifact store cannot be written ({reason})"
    return why, f"{test}: {why}"


def decide_hook_cleanup(objects: Sequence[HookObject]) -> list[tuple[str, str]]:
    """(kind, name) of the hook objects to delete once the run has ended, in reverse creation order.

    As Helm v3 `execHook` does: a `hook-succeeded` object goes whatever the outcome (a supporting object
    succeeds once created; `hook-failed` applies only to the hook that failed, which is never one of them).
    """
    return [(o.kind, o.name) for o in reversed(objects) if names.HOOK_SUCCEEDED in o.delete_policies]
