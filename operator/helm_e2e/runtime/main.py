"""Start the operator: build Settings once, configure logging and metrics, win the Lease if leader election
is on, run kopf."""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

import kopf
import structlog

from helm_e2e.clients import metrics
from helm_e2e.clients.kube import Kube, load_api_client
from helm_e2e.runtime import leader
from helm_e2e.runtime.kopf_wiring import build_registry
from helm_e2e.runtime.logging_setup import configure_logging
from helm_e2e.runtime.shard import ShardWatch
from helm_e2e.runtime.standby_health import serve_standby_health
from helm_e2e.settings import Settings

log = structlog.get_logger(__name__)


def run_operator(*, liveness: str = "") -> None:
    settings = Settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    metrics.serve(settings.metrics_port)
    # every replica serves uploads and downloads (the store is shared), a standby too
    with _artifact_server(settings):
        _run(settings, liveness=liveness)


def _artifact_server(settings: Settings) -> contextlib.AbstractContextManager[None]:
    if not settings.artifacts_enabled:
        return contextlib.nullcontext()
    # the artifact stack (obstore, jwt, tarfile, aiohttp's server) only when artifacts are on
    from helm_e2e.artifacts.server import ArtifactServer, serve_artifacts, upload_limit
    from helm_e2e.artifacts.service import build_artifacts

    def make() -> ArtifactServer:
        kube = Kube(load_api_client(), timeout_seconds=settings.api_timeout_seconds)
        service = build_artifacts(settings)
        assert service is not None  # artifacts_enabled
        return ArtifactServer(service, kube.get_run, max_upload_bytes=upload_limit(settings))

    return serve_artifacts(make, host=settings.artifacts_bind, port=settings.artifacts_port)


def _run(settings: Settings, *, liveness: str) -> None:
    identity = operator_identity()
    elector = None
    if settings.leader_election:
        # A standby blocks here (alive and ready for the kubelet) and starts kopf only once it leads.
        elector = leader.build_elector(api_client=load_api_client(), settings=settings, identity=identity)
        with serve_standby_health(liveness):
            if not elector.hold():  # the election ended without a win: never run kopf without the Lease
                raise SystemExit(leader.LOST_LEADERSHIP_EXIT_CODE)
    try:
        if not settings.namespace_selector:
            _run_kopf(settings, liveness=liveness, identity=identity)
        while settings.namespace_selector:  # a shard: kopf runs again whenever its namespaces change
            shard = ShardWatch(load_api_client(), settings.namespace_selector).start()
            try:
                if shard.namespaces:
                    shard_settings = settings.model_copy(update={"watch_namespaces": shard.namespaces})
                    _run_kopf(shard_settings, liveness=liveness, identity=identity, stop_flag=shard.changed)
                else:  # nothing to serve yet (and kopf needs at least one namespace)
                    shard.changed.wait()
            finally:
                shard.stop()
            if not shard.changed.is_set():
                break  # kopf stopped for another reason (SIGTERM): the operator ends
            log.info("shard.restarting", selector=settings.namespace_selector)
    finally:
        if elector is not None:  # a clean stop (SIGTERM) hands the Lease over at once
            elector.release()


def _run_kopf(settings: Settings, *, liveness: str, identity: str, stop_flag: Any = None) -> None:
    namespaces = settings.watch_namespaces
    kopf.run(
        registry=build_registry(settings),
        standalone=True,  # kopf's peering is not leader election: the Lease above is
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=liveness or None,
        identity=identity,  # type: ignore[arg-type]  # kopf's Identity is NewType(str), not exported
        **({"stop_flag": stop_flag} if stop_flag is not None else {}),
    )


def operator_identity() -> str:
    """kopf's own default asks the passwd database for the user name, and the image's non-root uid
    (65532) has no entry there: the operator crashed at start in a real container. The pod name is
    unique enough and needs no lookup; the pid tells two operators on one machine apart. The Lease's
    holder is the same identity."""
    return f"helm-e2e@{socket.gethostname()}/{os.getpid()}"
