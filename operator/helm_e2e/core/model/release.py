"""A decoded Helm release: its revision, chart, trigger and test hooks (pure pydantic models).

Field names are snake_case in Python and camelCase on the wire (the CRD schema in crds/).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from helm_e2e.core.model.wire import WireModel


class Trigger(StrEnum):
    INSTALL = "install"
    UPGRADE = "upgrade"
    ROLLBACK = "rollback"
    SYNC = "sync"  # an Argo CD Application's sync (core/sources/argocd.py)


class OnFailure(StrEnum):
    """What happens when a revision's own run ends Failed (core/outcomes/rollback.py)."""

    ROLLBACK = "rollback"  # `helm rollback` to the newest earlier revision whose run Succeeded
    NONE = "none"


class Hook(BaseModel):
    name: str
    kind: str
    path: str = ""
    manifest: str
    events: list[str] = Field(default_factory=list)


class Release(BaseModel):
    name: str
    namespace: str
    revision: int
    status: str
    description: str = ""
    chart_name: str
    chart_version: str
    app_version: str = ""
    values: dict[str, Any] = Field(default_factory=dict)  # chart defaults merged with user config
    hooks: list[Hook] = Field(default_factory=list)
    manifest: str = ""  # the rendered objects (multi-document YAML): the readiness gate waits for them
    chart_annotations: dict[str, str] = Field(default_factory=dict)  # Chart.yaml `annotations` (strings)
    first_deployed: datetime | None = None
    last_deployed: datetime | None = None
    trigger: Trigger
    rollback_revision: int | None = None  # the revision a rollback restored: Helm 4's info.rollback_revision
    # Helm 4's `apply_method` of the revision: "ssa" = server-side apply, which its `helm test` also uses
    # for the test hooks' objects (pkg/action/release_testing.go); "csa" or "" (Helm 3) = create
    apply_method: str = ""
    app_labels: dict[str, str] = Field(default_factory=dict)  # an Argo CD Application's labels (suites)


# --- E2ERun ----------------------------------------------------------------------------------------


class ManagedBy(WireModel):
    """spec.release.managedBy: the GitOps object that owns the release (core/sources/flux.py)."""

    kind: str  # HelmRelease (Flux) or Application (Argo CD)
    name: str
    namespace: str
    tests: bool = False  # its controller runs the chart's test hooks itself: this run does not
