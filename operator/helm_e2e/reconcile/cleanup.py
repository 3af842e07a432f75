"""Deletes what the decision said to: a run's pods, Jobs and hook objects, and the release's runs beyond the
history limit (with their artifacts)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from helm_e2e.clients.kube_port import KubePort
from helm_e2e.core.lifecycle import actions as act
from helm_e2e.core.lifecycle.end_runs import decide_prune
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_codec import runs_from_bodies

if TYPE_CHECKING:  # the artifact stack (obstore, jwt, tarfile) is imported only when artifacts are on
    from helm_e2e.artifacts.service import Artifacts

log = structlog.get_logger(__name__)
Delete = act.DeletePods | act.DeleteJobs | act.DeleteHookObjects


class Cleanup:
    def __init__(self, *, kube: KubePort, artifacts: Artifacts | None) -> None:
        self.kube, self.artifacts = kube, artifacts

    async def delete(self, run: Run, action: Delete) -> None:
        if isinstance(action, act.DeletePods):
            for pod in action.names:
                await self.kube.delete_pod(run.namespace, pod)
        elif isinstance(action, act.DeleteJobs):
            for job in action.names:
                await self.kube.delete_job(run.namespace, job)
        else:
            for kind, name in action.objects:
                await self.kube.delete_hook_object(kind, run.namespace, name, run=run.name)

    async def prune(self, run: Run, action: act.PruneHistory) -> None:
        """The release's runs beyond `action.limit`, as this pass listed them (`action.runs`) or listed now;
        `run` itself never (a run created since is pruned next time)."""
        listed = action.runs
        if listed is None:
            listed = runs_from_bodies(await self.kube.list_runs(run.namespace, run.spec.release.name))
        uids = {r.name: r.uid for r in listed}
        for name in decide_prune(list(listed), limit=action.limit, keep=run.name):
            await self.kube.delete_run(run.namespace, name)
            log.info("run.pruned", run=name, namespace=run.namespace)
            if self.artifacts is not None:  # at once, not only on the DELETED event a crash could miss
                from helm_e2e.artifacts.service import delete_artifacts

                await delete_artifacts(self.artifacts, run.namespace, name, uids.get(name, ""))
