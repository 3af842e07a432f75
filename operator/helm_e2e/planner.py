"""Planning in the shell: gathers what `core.plan` needs (suites) and keeps the plan of a new run until
its first reconcile; after a restart it plans a run's missing tests again from the Helm release secret."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from . import errors
from .adapters.port import KubePort
from .config import Settings
from .core import names
from .core import plan as planning
from .core import release as releases
from .core.models import Release, Run, Suite
from .suites import record_suite_problems

RunKey = tuple[str, str]  # (namespace, name)
RELEASE_GONE = "the Helm release secret is gone; the test cannot be planned again"
NOT_IN_PLAN = "the test is no longer part of the plan"


class Planner:
    def __init__(self, *, settings: Settings, kube: KubePort, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.kube = kube
        self.now = clock
        self._kept: dict[RunKey, planning.Plan] = {}  # planned at intake, used by the first reconcile

    async def plan(self, release: Release, *, record_suites: bool) -> planning.Plan:
        raw = await self.kube.list_suites(release.namespace)
        suites = [
            Suite(
                name=s["metadata"]["name"],
                namespace=release.namespace,
                generation=s["metadata"].get("generation", 0),
                spec=s.get("spec") or {},
            )
            for s in raw
        ]
        plan = planning.build_plan(
            release,
            suites=suites,
            image_tag_values_path=self.settings.image_tag_values_path,
            run_chart_hooks=self.settings.run_chart_hooks,
            default_timeout_seconds=self.settings.default_test_timeout_seconds,
        )
        if record_suites:  # a re-plan for a lost pod never rewrites the suites' status
            await record_suite_problems(self.kube, suites, plan, now=self.now())
        return plan

    def keep(self, key: RunKey, plan: planning.Plan) -> None:
        self._kept[key] = plan

    def forget(self, key: RunKey) -> None:
        self._kept.pop(key, None)

    def kept(self, key: RunKey) -> planning.Plan | None:
        return self._kept.get(key)

    async def replan(self, run: Run, tests: Sequence[str]) -> dict[str, planning.PlannedTest | str]:
        """The planned tests of `tests` (the intake's plan, else a new one), or why they cannot be planned."""
        plan = self._kept.pop((run.namespace, run.name), None)
        if plan is None:
            ref = run.spec.release
            secret_name = f"{names.HELM_SECRET_PREFIX}{ref.name}.v{ref.revision}"
            secret = await self.kube.get_secret(ref.namespace, secret_name)
            if secret is None:
                return dict.fromkeys(tests, RELEASE_GONE)
            try:
                plan = await self.plan(releases.decode_release_secret(secret), record_suites=False)
            except errors.ReleaseDecodeError as e:
                return dict.fromkeys(tests, str(e))
        by_name = {t.name: t for t in plan.tests}
        return {n: by_name.get(n, NOT_IN_PLAN) for n in tests}
