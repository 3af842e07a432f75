"""Planning in the shell: what a plan needs from the cluster (suites, test accounts), decoding and planning
off the event loop in the bounded sandbox (one call per revision), and the plan of a new run kept for its
life (until final or gone; bounded), so its reconciles never decode or plan it again.

After a restart a run's missing tests are planned again from its Helm release secret; only the intake
writes the suites' status (once its run exists).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from helm_e2e import errors
from helm_e2e.clients import sandbox as sandboxing
from helm_e2e.clients.kube_port import KubePort
from helm_e2e.core.lifecycle import decide, trust
from helm_e2e.core.model import names
from helm_e2e.core.model.release import OnFailure, Release
from helm_e2e.core.model.run import ReadinessMode, Run
from helm_e2e.core.model.run_status import TestResult
from helm_e2e.core.model.suite import Suite
from helm_e2e.core.plan import build as planning
from helm_e2e.core.plan import decode_and_plan as planjob
from helm_e2e.core.sources import argocd, flux
from helm_e2e.settings import RollbackMode, Settings

RunKey = tuple[str, str]  # (namespace, name)
RELEASE_GONE = "the Helm release secret is gone; the test cannot be planned again"
NOT_IN_PLAN = "the test is no longer part of the plan"
APPLICATION_GONE = "the Argo CD Application (or its sync) is gone; the test cannot be planned again"
MAX_KEPT_PLANS = 10_000  # plans of runs in flight (a plan is a few KiB)
MAX_KEPT_RELEASES = 10_000  # decoded revisions, without values (a few KiB each: chart metadata, manifest)
SecretVersion = tuple[str, str, str, str]  # (namespace, name, uid, resourceVersion): one content, ever


def secret_version(secret: Mapping[str, Any]) -> SecretVersion | None:
    """What names one content of a Secret; None without a uid or resourceVersion (nothing is kept)."""
    meta = secret.get("metadata") or {}
    key = tuple(str(meta.get(k) or "") for k in ("namespace", "name", "uid", "resourceVersion"))
    return (key[0], key[1], key[2], key[3]) if all(key) else None


def _put(kept: dict[Any, Any], key: Any, value: Any, limit: int) -> None:
    """Bounded: the oldest entry goes first."""
    if key not in kept and len(kept) >= limit:
        kept.pop(next(iter(kept)))
    kept[key] = value


def build_plan_options(settings: Settings, test_accounts: frozenset[str]) -> planjob.PlanOptions:
    return planjob.PlanOptions(
        image_tag_values_path=settings.image_tag_values_path,
        run_chart_hooks=settings.run_chart_hooks,
        default_timeout_seconds=settings.default_test_timeout_seconds,
        pod_security=settings.pod_security,
        test_accounts=test_accounts,
        mail_allowed_domains=settings.allowed_mail_domains if settings.smtp_enabled else None,
        readiness=settings.readiness,
        ready_timeout_seconds=settings.ready_timeout_seconds,
        rollback_on_failure=settings.rollback == RollbackMode.ON_FAILURE,
    )


@dataclass(frozen=True)
class PlanContext:
    suites: list[Suite]
    accounts: frozenset[str]


class Planner:
    def __init__(
        self,
        *,
        settings: Settings,
        kube: KubePort,
        clock: Callable[[], datetime],
        sandbox: sandboxing.Sandbox | None = None,
    ) -> None:
        """Without a sandbox (unit tests) decoding and planning run in this process."""
        self.settings = settings
        self.kube = kube
        self.now = clock
        self.sandbox = sandbox
        self._kept: dict[RunKey, planning.Plan] = {}
        self._releases: dict[SecretVersion, Release] = {}  # decoded by `plan`, for `decode`

    async def decode(self, secret: Mapping[str, Any]) -> Release:
        """The release without its values; ReleaseDecodeError (or a SandboxError) when it cannot be. A
        Secret `plan` decoded already (that very content: same resourceVersion) is not decoded again."""
        version = secret_version(secret)
        if version is not None and version in self._releases:
            return self._releases[version]
        if self.sandbox is None:
            return planjob.decode_release(secret)
        limit = self.settings.sandbox_timeout_seconds
        return await sandboxing.decode_release(self.sandbox, secret, time_limit=limit)

    async def context(self, namespace: str) -> PlanContext:
        """What a plan reads from the cluster: the namespace's suites and test accounts (both at once)."""
        listed, accounts = await asyncio.gather(
            self.kube.list_suites(namespace), self.kube.list_test_accounts(namespace)
        )
        suites = [
            Suite(
                name=s["metadata"]["name"],
                namespace=namespace,
                generation=s["metadata"].get("generation", 0),
                spec=s.get("spec") or {},
            )
            for s in listed
        ]
        return PlanContext(suites=suites, accounts=accounts)

    async def plan(
        self, secret: Mapping[str, Any], *, context: PlanContext | None = None
    ) -> planjob.ReleasePlan:
        """The revision decoded and planned in ONE sandbox call (time and memory bounded); the decoded
        release is kept for `decode`. `context`: read already by the caller (the intake: beside its GET
        of the run, when it asks)."""
        namespace = str((secret.get("metadata") or {}).get("namespace", ""))
        context = context or await self.context(namespace)
        suites = context.suites
        options = build_plan_options(self.settings, context.accounts)
        if self.sandbox is None:
            planned = planjob.decode_and_plan(secret, suites=suites, options=options)
        else:
            planned = await sandboxing.decode_and_plan(
                self.sandbox,
                secret,
                suites=suites,
                options=options,
                time_limit=self.settings.sandbox_timeout_seconds,
            )
        if (version := secret_version(secret)) is not None:
            _put(self._releases, version, planned.release, MAX_KEPT_RELEASES)
        return planned

    async def _release_plan(self, run: Run) -> planning.Plan | str:
        """The run's plan again from its Helm release Secret, or why it cannot be."""
        ref = run.spec.release
        secret = await self.kube.get_secret(
            ref.namespace, f"{names.HELM_SECRET_PREFIX}{ref.name}.v{ref.revision}"
        )
        if secret is None:
            return RELEASE_GONE
        if why := trust.refuse_secret(run, secret):
            raise errors.RunRefused(why)
        try:
            plan = (await self.plan(secret)).plan
        except errors.ReleaseDecodeError as e:
            return str(e)
        except errors.SandboxError as e:
            return f"the release could not be planned again: {e}"
        if ref.managed_by is not None and ref.managed_by.tests:
            plan = planning.leave_chart_tests_to_flux(plan)
        return plan

    async def _application_plan(self, run: Run) -> planning.Plan | str:
        """An Argo CD sync's run planned again from its Application (the very one: by uid), or why not."""
        ref = run.spec.release
        managed = ref.managed_by
        app = await self.kube.get_application(managed.namespace, managed.name) if managed else None
        sync = argocd.latest_sync(app) if app is not None else None
        if app is None or sync is None or sync.namespace != run.namespace:
            return APPLICATION_GONE
        if sync.uid != ref.secret_uid:
            raise errors.RunRefused(
                "the Application is not the one this run was planned from (its uid differs)"
            )
        release = argocd.build_release(app, dataclasses.replace(sync, history_id=ref.revision))
        try:
            return await self.plan_application(release, await self.context(run.namespace))
        except errors.SandboxError as e:
            return f"the application could not be planned again: {e}"

    async def plan_application(self, release: Release, context: PlanContext) -> planning.Plan:
        """An Argo CD sync's plan: the suites that select the application (no chart hooks: Argo skips them),
        no readiness gate (the sync is tested once Healthy), never a rollback (Argo owns sync)."""
        options = dataclasses.replace(
            build_plan_options(self.settings, context.accounts), readiness=ReadinessMode.NONE
        )
        if self.sandbox is None:
            plan = planjob.plan_release(release, suites=context.suites, options=options)
        else:
            limit = self.settings.sandbox_timeout_seconds
            plan = await sandboxing.plan_release(
                self.sandbox, release, suites=context.suites, options=options, time_limit=limit
            )
        return plan.model_copy(update={"on_failure": OnFailure.NONE})

    async def with_flux(self, release: Release, plan: planning.Plan) -> planning.Plan:
        """The plan without the chart's tests when the release's Flux HelmRelease runs them for this
        revision (one GET, only for a release labelled by Flux; a HelmRelease that does not name this
        release is not believed; a rollback Flux never tests)."""
        ref = plan.managed_by
        if ref is None:
            return plan
        found = await self.kube.get_helm_release(ref.namespace, ref.name)
        if flux.flux_runs_tests(
            found, release=release.name, namespace=release.namespace, trigger=release.trigger
        ):
            return planning.leave_chart_tests_to_flux(plan)
        return plan

    async def flux_tests(self, run: Run) -> dict[str, TestResult]:
        """What the run's Flux HelmRelease recorded of the chart tests Flux ran for its revision."""
        ref = run.spec.release
        if ref.managed_by is None:
            return {}
        found = await self.kube.get_helm_release(ref.managed_by.namespace, ref.managed_by.name)
        return flux.flux_test_results(found, release=ref.name, namespace=ref.namespace, revision=ref.revision)

    def keep(self, key: RunKey, plan: planning.Plan) -> None:
        """Kept until the run is final or gone: a release revision is immutable, so a run waiting at its
        gate is never decoded and planned again on each pass (bounded: the oldest go first)."""
        _put(self._kept, key, plan, MAX_KEPT_PLANS)

    def forget(self, key: RunKey) -> None:
        self._kept.pop(key, None)

    def kept(self, key: RunKey) -> planning.Plan | None:
        return self._kept.get(key)

    async def replan(self, run: Run, tests: Sequence[str]) -> decide.Replanned:
        """The planned tests of `tests` (the intake's plan, else a new one), or why they cannot be planned;
        with the hook objects the chart's tests rely on."""
        plan = self._kept.get((run.namespace, run.name))
        if plan is None:
            managed = run.spec.release.managed_by
            argo = managed is not None and managed.kind == names.MANAGED_BY_ARGOCD
            found = await (self._application_plan(run) if argo else self._release_plan(run))
            if isinstance(found, str):
                return decide.Replanned(tests=dict.fromkeys(tests, found))
            plan = found
            self.keep((run.namespace, run.name), plan)
        by_name = {t.name: t for t in plan.tests}
        planned = {n: by_name.get(n, NOT_IN_PLAN) for n in tests}
        return decide.Replanned(
            tests=planned,
            resources=plan.resources,
            rollout=plan.rollout_objects,
            server_side_apply=plan.server_side_apply,
        )
