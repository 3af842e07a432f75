"""Start the operator: build Settings once, configure logging and metrics, run kopf."""

from __future__ import annotations

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
    )
