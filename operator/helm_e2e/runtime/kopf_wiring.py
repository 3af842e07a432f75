"""kopf wiring only. Handlers are registered on an explicit registry after Settings are built, so no
configuration is read at import time; each handler hands its event to the Controller.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import kopf
import structlog
from kopf._core.reactor import inventory as kopf_inventory

from helm_e2e.clients import metrics
from helm_e2e.clients.gitops import argocd_api_served
from helm_e2e.clients.kube import Kube, load_api_client
from helm_e2e.clients.kube_rest import build_rest
from helm_e2e.clients.sandbox import Sandbox
from helm_e2e.clients.watch_cache import WatchCache
from helm_e2e.core.lifecycle import reruns
from helm_e2e.core.model import names
from helm_e2e.core.outcomes import outbox
from helm_e2e.reconcile.controller import Controller
from helm_e2e.reconcile.suite_status import on_suite_event
from helm_e2e.runtime import lean_watch
from helm_e2e.runtime.scheduler import Scheduler
from helm_e2e.settings import Settings

if TYPE_CHECKING:  # the artifact stack (obstore, jwt, tarfile) is imported only when artifacts are on
    from helm_e2e.artifacts.service import Artifacts

HELM_SECRETS = ("", "v1", "secrets")
TEST_PODS = ("", "v1", "pods")
RUNS = (names.GROUP, names.VERSION, names.RUNS)
SUITES = (names.GROUP, names.VERSION, names.SUITES)
TEST_ACCOUNTS = ("", "v1", "serviceaccounts")  # only those labelled for tests (server-side selector)
# Argo CD Applications: a source of deploys (docs/gitops.md), watched when the API is served
APPLICATIONS = (names.ARGOCD_GROUP, names.ARGOCD_VERSION, names.ARGOCD_APPLICATIONS)
log = structlog.get_logger(__name__)
LIST_CHUNK = 100  # objects per page of kopf's initial listings
IDLE_WORKER_SECONDS = 0.2  # an object's event worker exits this soon after its last event


def keep_no_kopf_memory_of_helm_secrets() -> bool:
    """kopf keeps a memory object for every object it ever saw until the object is deleted (~1 KiB each:
    52 MiB for 55,000 Helm Secrets, for good). Our Secret handler needs none of it (no daemons, indexes or
    handler state), so Helm Secrets are recalled as kopf's admission webhooks recall theirs: ephemeral,
    never stored. kopf has no setting for this; its private `recall` is wrapped, and left alone (False)
    when its signature is not the one this was written for (kopf 1.45)."""
    memories = kopf_inventory.ResourceMemories
    recall = memories.recall
    if getattr(recall, "_helm_e2e", False):
        return True
    if "ephemeral" not in inspect.signature(recall).parameters:
        return False

    @functools.wraps(recall)
    async def recall_helm_secrets_ephemeral(
        self: kopf_inventory.ResourceMemories, raw_body: Any, **kwargs: Any
    ) -> kopf_inventory.ResourceMemory:
        if raw_body.get("type") == names.HELM_SECRET_TYPE and raw_body.get("kind", "Secret") == "Secret":
            kwargs["ephemeral"] = True
        return await recall(self, raw_body, **kwargs)

    recall_helm_secrets_ephemeral._helm_e2e = True  # type: ignore[attr-defined]
    memories.recall = recall_helm_secrets_ephemeral  # type: ignore[method-assign]
    return True


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf builds every event's "essence" (a deep copy of the body, minus status) and diffs it against the
    last handled one, for on.create/update/field handlers. We register only on.event handlers, which get
    no diff: that copy was the largest part of kopf's cost per event (a profile of `make bench-scale`).
    No essence, nothing to diff; tests/unit/runtime/test_kopf_wiring_imports.py fails if a handler other than
    on.event is registered."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def watch_client_timeout(server_timeout: int) -> float:
    """A watch's whole duration on the client's side: past the apiserver's own end of it, with margin."""
    return server_timeout + max(5.0, server_timeout / 5)


@dataclass
class Parts:
    """What the handlers hand their events to, built once per kopf run."""

    cache: WatchCache
    kube: Kube
    sandbox: Sandbox
    evidence: Artifacts | None
    controller: Controller
    scheduler: Scheduler
    argo: bool
    background: list[asyncio.Future[Any]] = field(default_factory=list)
    streams: list[asyncio.Task[None]] = field(default_factory=list)  # runs and pods (lean_watch)
    work: lean_watch.KeyedTasks = field(default_factory=lean_watch.KeyedTasks)  # what their events ask
    apis_built: bool = False

    def build_apis_soon(self) -> None:
        """At the first Helm release seen: the built-in API clients (~20 MiB of models, ~1 s to import) are
        built in a thread, before its run needs them, not on the event loop at the run's first call."""
        if not self.apis_built:
            self.apis_built = True
            self.background.append(asyncio.get_running_loop().run_in_executor(None, self.kube.build_apis))


def build_parts(settings: Settings) -> Parts:
    # the run and pod events below keep this cache: a run's reconcile reads them without asking the API
    cache = WatchCache(settled=outbox.settled_body)
    api = load_api_client(connections=settings.api_threads)
    # a run's own requests go out on the event loop (clients/kube_rest.py: a fraction of a thread's CPU)
    timeout = settings.api_timeout_seconds
    rest = build_rest(api, timeout_seconds=timeout, connections=settings.api_threads)
    kube = Kube(api, timeout_seconds=timeout, cache=cache, rest=rest)
    argo = settings.argocd == "auto" and argocd_api_served(api, timeout_seconds=timeout)
    # release decoding and template rendering run in bounded worker processes, never on the event loop
    sandbox = Sandbox(memory_mib=settings.sandbox_memory_mib)
    evidence = _artifacts(settings)
    controller = Controller(settings=settings, kube=kube, sandbox=sandbox, artifacts=evidence)
    scheduler = Scheduler(controller=controller, clock=lambda: datetime.now(UTC))
    return Parts(cache, kube, sandbox, evidence, controller, scheduler, argo)


def _artifacts(settings: Settings) -> Artifacts | None:
    if not settings.artifacts_enabled:
        return None
    from helm_e2e.artifacts.service import build_artifacts

    return build_artifacts(settings)


def configure_kopf(settings: kopf.OperatorSettings, config: Settings) -> None:
    """kopf's settings for our watches, memory and timeouts (`settings` is kopf's, `config` ours)."""
    # Server-side filtering: never hold every secret of the cluster in memory, and list one Secret per
    # release at a start, not one per revision (core/sources/intake.py reads what a DELETED means)
    settings.watching.label_selectors[HELM_SECRETS] = names.HELM_SECRET_SELECTOR
    settings.watching.field_selectors[HELM_SECRETS] = f"type={names.HELM_SECRET_TYPE}"
    settings.watching.label_selectors[TEST_PODS] = names.MANAGED_BY_SELECTOR
    settings.watching.label_selectors[TEST_ACCOUNTS] = names.TEST_ACCOUNT_SELECTOR
    settings.peering.standalone = True  # one replica (Recreate); kopf peering is not leader election
    settings.posting.enabled = False  # our Events are posted by the controller, with our reasons
    settings.persistence.diffbase_storage = NoDiffBase()  # only on.event handlers: no diffs to keep
    # A start with 50,000 Helm Secrets: kopf lists in pages (default: one response of them all) and its
    # idle per-object workers, each holding its last body, exit soon (default 5 s): the peak stays flat
    # (20,000 Secrets: 641 MiB with the defaults, 146 MiB with these; tests/bench/scale.py)
    if not keep_no_kopf_memory_of_helm_secrets():
        log.warning("kopf.memory", detail="kopf changed: it keeps a memory of every Helm Secret")
    settings.watching.chunk_size = LIST_CHUNK
    settings.queueing.idle_timeout = IDLE_WORKER_SECONDS
    # kopf's defaults have no timeouts: a request or watch on a connection that died without an error
    # waits forever, and the operator is silent while runs stay unfinished
    connect = min(10.0, config.api_timeout_seconds)
    settings.networking.request_timeout = config.api_timeout_seconds
    settings.networking.connect_timeout = settings.watching.connect_timeout = connect
    settings.watching.server_timeout = config.watch_timeout_seconds
    settings.watching.client_timeout = watch_client_timeout(config.watch_timeout_seconds)
    # Exact namespaces need no discovery of namespaces/CRDs, and a namespaced Role cannot list them:
    # without this kopf logs a 403 warning at every start.
    settings.scanning.disabled = bool(config.watch_namespaces)


def start_background(parts: Parts, *, threads: int) -> None:
    """The work queue, the schedules, the sandbox's warm-up and (with artifacts) the store's checks."""
    # the Kubernetes client blocks: its calls run in this pool (asyncio.to_thread), sized by config
    if threads:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(threads))
    parts.controller.queue.start()
    parts.scheduler.start()
    tasks = parts.background
    tasks.append(asyncio.create_task(parts.sandbox.warm()))  # no cold first decode; kopf starts meanwhile
    if parts.evidence is not None:  # runs deleted while no operator watched: their artifacts go now
        from helm_e2e.artifacts.service import sweep_orphans

        # an unwritable store is said at once (log, metric), not only when a test needs it
        tasks.append(asyncio.create_task(parts.evidence.store_problem(fresh=True)))
        tasks.append(asyncio.create_task(sweep_orphans(parts.evidence, parts.kube.get_run)))


def build_registry(settings: Settings) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    parts = build_parts(settings)
    register_lifecycle(registry, parts, settings)
    register_release_events(registry, parts)
    register_account_events(registry, parts)
    return registry


def register_lifecycle(registry: kopf.OperatorRegistry, parts: Parts, config: Settings) -> None:
    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # the same credentials as our own client: in-cluster service account, else the kubeconfig
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_kopf(settings, config)
        metrics.WATCH_RESTARTS.inc()
        start_background(parts, threads=config.api_threads)
        parts.streams = lean_watch.start(settings, config.watch_namespaces, run_event_handlers(parts))

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        for task in parts.streams:
            task.cancel()
        await asyncio.gather(*parts.streams, return_exceptions=True)
        await parts.work.stop()
        await parts.scheduler.stop()
        await parts.controller.queue.stop()
        parts.controller.checks.stop()
        parts.sandbox.close()
        await parts.kube.rest.close()


def register_release_events(registry: kopf.OperatorRegistry, parts: Parts) -> None:
    """What starts runs: Helm release Secrets, E2ESuites, Argo CD Applications (when served)."""
    controller, cache, scheduler = parts.controller, parts.cache, parts.scheduler

    @kopf.on.event(*HELM_SECRETS, registry=registry)
    async def helm_release_secret(type: str, body: kopf.Body, **_: Any) -> None:
        parts.build_apis_soon()
        await controller.on_release_secret(type, body)

    @kopf.on.event(*SUITES, registry=registry)
    async def e2esuite(type: str, body: kopf.Body, **_: Any) -> None:
        cache.saw_suite(body, deleted=type == "DELETED")  # first: the next plan reads it
        scheduler.observe(type, body)
        if type != "DELETED":
            await on_suite_event(controller.kube, body, now=datetime.now(UTC))

    if parts.argo:  # the API is served (checked once at start): a new sync is a deploy to test

        @kopf.on.event(*APPLICATIONS, registry=registry)
        async def application(type: str, body: kopf.Body, **_: Any) -> None:
            if type != "DELETED":
                await controller.on_application(body)


def run_event_handlers(parts: Parts) -> dict[lean_watch.Resource, lean_watch.EventHandler]:
    """What a run's reconcile reads of its E2ERun and test pods, streamed without kopf's per-event work
    (runtime/lean_watch.py): the watch cache keeps them, and what is new wakes the run's pass."""
    controller, cache, evidence, work = parts.controller, parts.cache, parts.evidence, parts.work

    def e2erun(type: str, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        if not namespace or not name:
            return
        key = (namespace, name)
        if type == "DELETED":
            cache.deleted_run(key)
            if evidence is not None:  # pruned or deleted: its files go too
                uid = str(meta.get("uid") or "")
                work.add(key, functools.partial(_delete_artifacts, evidence, namespace, name, uid))
            return
        news = cache.news(body)  # a settled run's own last write coming back wakes nothing
        cache.saw_run(body)
        if news:
            controller.queue.add(key)
        annotations = meta.get("annotations") or {}
        if reruns.rerun_token(annotations):  # a rerun asked for: created off the stream, in order per run
            release = str((body.get("spec") or {}).get("release", {}).get("name", ""))
            work.add(
                key,
                functools.partial(controller.on_run_annotations, namespace, release, annotations, run=body),
            )

    def test_pod(type: str, body: Mapping[str, Any]) -> None:
        news = cache.saw_pod(body, deleted=type == "DELETED")  # not our create's own response coming back
        meta = body.get("metadata") or {}
        run, namespace = (meta.get("labels") or {}).get(names.RUN_LABEL), meta.get("namespace")
        if news and run and namespace:
            controller.queue.add((namespace, run))

    return {RUNS: e2erun, TEST_PODS: test_pod}


async def _delete_artifacts(evidence: Artifacts, namespace: str, name: str, uid: str) -> None:
    from helm_e2e.artifacts.service import delete_artifacts

    await delete_artifacts(evidence, namespace, name, uid)


def register_account_events(registry: kopf.OperatorRegistry, parts: Parts) -> None:
    """The test service accounts a plan reads (rare events: kopf's handlers are cheap enough)."""
    cache = parts.cache

    @kopf.on.event(*TEST_ACCOUNTS, registry=registry)
    async def test_account(type: str, body: kopf.Body, **_: Any) -> None:
        # a label removed is a DELETED event for a selecting watch: the account stops being one at once
        cache.saw_account(body, deleted=type == "DELETED")
