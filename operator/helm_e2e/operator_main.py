"""Start the operator: build Settings once, configure logging and metrics, run kopf."""

from __future__ import annotations

import os
import socket

import kopf

from .adapters import metrics
from .config import Settings
from .handlers import build_registry
from .logging_setup import configure_logging


def run_operator(*, liveness: str = "") -> None:
    settings = Settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    metrics.serve(settings.metrics_port)
    namespaces = settings.watch_namespaces
    kopf.run(
        registry=build_registry(settings),
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=liveness or None,
        identity=operator_identity(),  # type: ignore[arg-type]  # kopf's Identity is NewType(str), not exported
    )


def operator_identity() -> str:
    """kopf's own default asks the passwd database for the user name, and the image's non-root uid
    (65532) has no entry there: the operator crashed at start in a real container. The pod name is
    unique enough and needs no lookup."""
    return f"helm-e2e@{socket.gethostname()}/{os.getpid()}"
