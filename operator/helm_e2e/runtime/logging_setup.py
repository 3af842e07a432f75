"""structlog configuration: one key=value (console) or JSON event per state change."""

from __future__ import annotations

import logging

import structlog

from helm_e2e.settings import LogFormat


def configure_logging(*, fmt: LogFormat, level: str) -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == LogFormat.JSON
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    logging.basicConfig(level=level.upper(), format="%(message)s")
    # kopf logs every handled event at INFO; our own log lines carry the state changes that matter
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
