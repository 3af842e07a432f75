"""Creates what the decision asked for: a chart's hook objects (whole or not at all), then the tests' pods and
Jobs, each with the collector sidecar the core adds once its upload token is minted here. What the API
refuses is returned by test, for the decision to see in the same pass."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from helm_e2e import errors
from helm_e2e.clients import metrics
from helm_e2e.clients.kube_port import KubePort
from helm_e2e.core.lifecycle import actions as act
from helm_e2e.core.lifecycle import creation
from helm_e2e.core.model import names
from helm_e2e.core.model.run import Run
from helm_e2e.core.plan import hook_trust
from helm_e2e.reconcile.write_status import StatusWriter, run_ref

if TYPE_CHECKING:  # the artifact stack (obstore, jwt, tarfile) is imported only when artifacts are on
    from helm_e2e.artifacts.service import Artifacts

log = structlog.get_logger(__name__)
Refused = dict[str, tuple[str, str]]  # test → (API reason, message)


class TestCreator:
    __test__ = False  # not a pytest class, whatever its name

    def __init__(
        self,
        *,
        kube: KubePort,
        artifacts: Artifacts | None,
        status: StatusWriter,
        clock: Callable[[], datetime],
    ) -> None:
        self.kube, self.artifacts, self.status, self.now = kube, artifacts, status, clock

    async def create(self, run: Run, actions: Sequence[act.Action]) -> Refused:
        """Create the hook objects, then the tests; what the API refused, by test (reason, message)."""
        refused: Refused = {}
        for action in actions:
            create: Callable[[], Awaitable[Any]]
            if isinstance(action, act.CreateHookObjects):
                tests, create = action.tests, functools.partial(self._create_hook_objects, run, action)
            elif isinstance(action, act.CreateTest) and action.test not in refused:
                creator = self.kube.create_job if action.kind == "Job" else self.kube.create_pod
                body = creation.body_to_create(action, await self._upload_token(run, action))
                tests, create = (action.test,), functools.partial(creator, body)
            else:
                continue
            try:
                await create()
            except errors.ApiRefused as e:
                refused |= dict.fromkeys(tests, (e.reason, e.message))
                _count_refusal(run, tests, e)
        return refused

    async def _upload_token(self, run: Run, action: act.CreateTest) -> str | None:
        """The collector's upload token (a signature: minted here); None when the decision wants no
        collector, or when the store cannot be written (the test runs without one, and says so)."""
        if self.artifacts is None or action.collector is None:
            return None
        try:
            return await self.artifacts.upload_token(run, action.test, now=self.now())
        except errors.StoreError as e:  # evidence is best effort: the test runs, without a collector
            log.warning("artifacts.unavailable", run=run.name, namespace=run.namespace, error=str(e))
            why, message = creation.collector_unavailable(action.test, e.reason)
            self.artifacts.not_collected(run, action.test, why)  # the test's artifactsMessage when it ends
            event = act.PostEvent("Warning", names.EVENT_ARTIFACTS_UNAVAILABLE, message)
            await self.status.post_event(run_ref(run), event)
            return None

    async def _create_hook_objects(self, run: Run, action: act.CreateHookObjects) -> None:
        """The hook set whole or not at all: in the order decided (Roles before RoleBindings), a binding only
        to a Role created just before (`hook_trust.refuse_to_bind`, by uid); on the first refusal what this
        pass created or adopted is deleted again, then the refusal ends the set's tests."""
        made: list[tuple[str, str]] = []  # (kind, name) in creation order
        roles: dict[str, str] = {}  # Role name → the uid its create returned
        try:
            for body, replace_ours in zip(action.bodies, action.replace_ours, strict=True):
                if why := hook_trust.refuse_to_bind(body, created_roles=roles):
                    raise errors.ApiRefused(why, status=403, reason=names.REASON_HOOK_REFUSED)
                uid = await self.kube.create_hook_object(
                    body, replace_ours=replace_ours, server_side=action.server_side_apply
                )
                kind, name = str(body["kind"]), str(body["metadata"]["name"])
                made.append((kind, name))
                if kind == "Role":
                    roles[name] = uid
        except errors.ApiRefused:
            for kind, name in reversed(made):
                await self.kube.delete_hook_object(kind, run.namespace, name, run=run.name)
            raise


def _count_refusal(run: Run, tests: Sequence[str], e: errors.ApiRefused) -> None:
    metrics.CREATE_REFUSED.labels(reason=e.reason).inc()
    log.warning(
        "create.refused",
        run=run.name,
        namespace=run.namespace,
        tests=list(tests),
        status=e.status,
        reason=e.reason,
        error=e.message[:300],
    )
