"""A release of web r3 (chart test hooks, a Job hook) and its plan, as planning's tests build them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from helm_e2e.core.model.release import Hook, Release, Trigger
from helm_e2e.core.model.suite import Suite
from helm_e2e.core.plan.build import Plan, build_plan

POD_HOOK = """apiVersion: v1
kind: Pod
metadata:
  name: web-smoke
  labels: {team: shop, app.kubernetes.io/managed-by: Helm}
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation
    helm.sh/hook-weight: "1"
    sim.helm-e2e.dev/exit-code: "1"
    helm-e2e.dev/timeout-seconds: "42"
spec:
  containers:
  - name: t
    image: busybox
"""

JOB_HOOK = """apiVersion: batch/v1
kind: Job
metadata: {name: web-job}
spec:
  backoffLimit: 3
  template:
    spec:
      containers: [{name: c, image: job-image}]
"""


def make_release(**kw: Any) -> Release:
    base: dict[str, Any] = {
        "name": "web",
        "namespace": "shop",
        "revision": 3,
        "status": "deployed",
        "chart_name": "web-chart",
        "chart_version": "1.2.3",
        "app_version": "2.0.0",
        "values": {"image": {"tag": "2.0.1"}},
        "hooks": [
            Hook(name="web-smoke", kind="Pod", manifest=POD_HOOK, events=["test"]),
            Hook(
                name="web-legacy",
                kind="Pod",
                manifest=POD_HOOK.replace("web-smoke", "web-legacy"),
                events=["test-success"],
            ),
            Hook(name="web-migrate", kind="Job", manifest=JOB_HOOK, events=["pre-upgrade", "post-install"]),
        ],
        "last_deployed": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "trigger": Trigger.UPGRADE,
    }
    base.update(kw)
    return Release(**base)


def make_suite(name: str = "api", *, tests: list[str] | None = None, **spec: Any) -> Suite:
    body: dict[str, Any] = {
        "tests": [
            {"name": t, "template": {"containers": [{"name": "c", "image": "e2e:{{ image_tag }}"}]}}
            for t in (tests or ["api-smoke"])
        ]
    }
    body.update(spec)
    return Suite(name=name, namespace="shop", spec=body)


def make_plan(release: Release | None = None, suites: list[Suite] | None = None, **kw: Any) -> Plan:
    args: dict[str, Any] = {
        "image_tag_values_path": "image.tag",
        "run_chart_hooks": True,
        "default_timeout_seconds": 600,
    }
    args.update(kw)
    return build_plan(release or make_release(), suites=suites or [], **args)
