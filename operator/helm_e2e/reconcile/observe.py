"""What a pass sees: the run's pods and Jobs, and the answers to the decision's Fetch actions (log tails,
pod Events, stored artifacts, a re-plan, the rollout, the release's history, Flux's test results)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from helm_e2e import errors
from helm_e2e.clients.kube_port import KubePort
from helm_e2e.core.lifecycle import actions as act
from helm_e2e.core.lifecycle import reruns
from helm_e2e.core.model import names
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_codec import runs_from_bodies
from helm_e2e.core.outcomes import rollback as rollbacks
from helm_e2e.core.results import retries
from helm_e2e.core.results.run_tests import TestObjects, log_container, log_tail
from helm_e2e.reconcile.planning import Planner
from helm_e2e.reconcile.recent_runs import RecentRuns

if TYPE_CHECKING:  # the artifact stack (obstore, jwt, tarfile) is imported only when artifacts are on
    from helm_e2e.artifacts.service import Artifacts

# what the Fetch actions fill in: an answer that changes none of them asks for no further decision
FETCHED = ("logs", "plan", "rollout", "history", "events", "artifacts", "flux")


class Observer:
    def __init__(
        self,
        *,
        kube: KubePort,
        planner: Planner,
        artifacts: Artifacts | None,
        log_tail_bytes: int,
        recent: RecentRuns | None = None,
    ) -> None:
        self.kube, self.planner, self.artifacts = kube, planner, artifacts
        self.log_tail_bytes = log_tail_bytes
        self.recent = recent  # None: no report will draw a history strip (no SMTP), nothing is kept

    async def objects(self, run: Run) -> TestObjects:
        """The run's pods by test; Jobs and their pods only when the run has Job tests (one more list)."""
        plain: list[Any] = []
        job_pods: dict[str, list[Any]] = {}
        for pod in await self.kube.list_run_pods(run.namespace, run.name):
            labels = pod["metadata"].get("labels") or {}
            test = labels.get(names.TEST_LABEL, "")
            if names.JOB_NAME_LABEL in labels:
                job_pods.setdefault(test, []).append(pod)
            else:
                plain.append(pod)
        pods, earlier = retries.index_pods(plain)  # per test, the highest attempt's pod
        jobs: dict[str, Any] = {}
        if any(t.kind == "Job" for t in run.spec.tests):
            for job in await self.kube.list_run_jobs(run.namespace, run.name):
                jobs[(job["metadata"].get("labels") or {}).get(names.TEST_LABEL, "")] = job
        return TestObjects(pods=pods, jobs=jobs, job_pods=job_pods, earlier_pods=earlier)

    async def answer(
        self, run: Run, observed: act.Observed, actions: Sequence[act.Action]
    ) -> act.Observed | None:
        """`observed` with the decision's Fetch actions answered, in order (FetchRollout reads the plan
        FetchPlan fetched just before); None when it asked for nothing new."""
        seen = observed
        for action in actions:
            seen = replace(seen, **await self._answer_one(run, seen, action))
        if all(getattr(seen, f) == getattr(observed, f) for f in FETCHED):
            return None
        return replace(seen, logs=seen.logs or {}, plan=seen.plan or act.Replanned(tests={}))

    async def _answer_one(self, run: Run, seen: act.Observed, action: act.Action) -> dict[str, Any]:
        tests = {t.name: t for t in run.spec.tests}
        if isinstance(action, act.FetchLogs):
            pods = {t: seen.objects.log_pod(tests[t]) for t in action.tests}
            answer: dict[str, Any] = {"logs": {t: await self._log_tail(run, pod) for t, pod in pods.items()}}
            if self.artifacts is not None:  # uploaded before the pod ended: the collector stops last
                answer["artifacts"] = {**seen.artifacts, **await self.artifacts.manifests(run, action.tests)}
            return answer
        if isinstance(action, act.FetchEvents):
            pods = {t: seen.objects.log_pod(tests[t]) for t in action.tests}
            return {"events": await self._events(run, pods)}
        if isinstance(action, act.FetchPlan):
            return {"plan": await self.planner.replan(run, action.tests)}
        if isinstance(action, act.FetchRollout):
            ready, failed, pending = await self.kube.check_rollout(
                list(seen.plan.rollout if seen.plan else ())
            )
            return {"rollout": act.Rollout(ready=ready, failed=failed, pending=pending)}
        if isinstance(action, act.FetchReleaseHistory):
            return {"history": await self.history(run, action)}
        if isinstance(action, act.FetchFluxTests):
            return {"flux": await self.planner.flux_tests(run)}
        return {}

    async def _events(self, run: Run, pods: Mapping[str, Mapping[str, Any] | None]) -> dict[str, list[Any]]:
        return {
            t: await self.kube.list_pod_events(run.namespace, pod["metadata"]["name"])
            for t, pod in pods.items()
            if pod is not None
        }

    async def history(self, run: Run, asked: act.FetchReleaseHistory) -> rollbacks.History:
        """The release's runs and stored revisions (secret labels, metadata only; none unless `asked` wants
        them); with `descriptions`, those of revisions newer than the run's (decoded in the sandbox), to
        recognise a rollback."""
        ref = run.spec.release
        labels = await self.kube.release_secret_labels(ref.namespace, ref.name) if asked.revisions else []
        revisions = {int(v) for lab in labels if (v := lab.get(names.HELM_VERSION_LABEL, "")).isdigit()}
        runs = runs_from_bodies(await self.kube.list_runs(ref.namespace, ref.name))
        if self.recent is not None:  # its report's history strip: no second LIST
            self.recent.keep((run.namespace, run.name), runs)
        newer = sorted(r for r in revisions if r > ref.revision) if asked.descriptions else []
        return rollbacks.History(
            deployed=reruns.deployed_revision(labels),
            revisions=revisions,
            runs=runs,
            rolled_back_to=await self._rolled_back_to(run, newer),
        )

    async def _rolled_back_to(self, run: Run, revisions: Sequence[int]) -> dict[int, int]:
        """Of these revisions of the run's release, those Helm wrote for a rollback → their target."""
        ref, found = run.spec.release, {}
        for revision in revisions:
            secret = await self.kube.get_secret(
                ref.namespace, f"{names.HELM_SECRET_PREFIX}{ref.name}.v{revision}"
            )
            if secret is None:
                continue
            try:
                target = (await self.planner.decode(secret)).rollback_revision
            except (errors.ReleaseDecodeError, errors.SandboxError):
                continue  # not Helm's own rollback revision, as far as we can tell
            if target is not None:
                found[revision] = target
        return found

    async def _log_tail(self, run: Run, pod: Mapping[str, Any] | None) -> str:
        if pod is None:
            return ""
        limit = self.log_tail_bytes
        text = await self.kube.read_log(
            run.namespace, pod["metadata"]["name"], log_container(pod), limit_bytes=limit
        )
        return log_tail(text, limit)
