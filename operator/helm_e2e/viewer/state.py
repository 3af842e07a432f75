"""What every request of the viewer needs, kept in the aiohttp app under VIEWER."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from helm_e2e.artifacts.client import Operator
from helm_e2e.clients.kube import Kube
from helm_e2e.viewer.source import Scope, Source


@dataclass
class Viewer:
    """The reads, the scope decided at start, where the operator's artifacts Service is."""

    source: Source
    kube: Kube
    scope: Scope
    operator_namespace: str | None = None
    operator_service: str | None = None
    hosts: set[str] = field(default_factory=set)  # Host headers accepted (empty: any, --address chosen)
    operator: Operator | None = None  # found on the first artifacts request
    streams: int = 0  # live streams open now (bounded by live.MAX_STREAMS)


VIEWER = web.AppKey("viewer", Viewer)
