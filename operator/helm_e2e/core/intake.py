"""Helm release secret events → what to do about them (pure).

The event's metadata alone decides most cases, before anything is decoded: a revision that is not
`deployed` needs nothing, an uninstall may cancel runs, and only a deployed revision is decoded and planned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from . import names
from .models import Release


class IntakeKind(StrEnum):
    IGNORE = "Ignore"  # pending-*, superseded, failed: nothing to run
    CANCEL = "Cancel"  # uninstalled: active runs of the release end Cancelled (if no revision is left)
    PLAN = "Plan"  # deployed: decode, plan, create the run


@dataclass(frozen=True)
class Intake:
    kind: IntakeKind
    namespace: str
    release: str


def classify_secret_event(event_type: str | None, secret: Mapping[str, Any]) -> Intake:
    meta = secret.get("metadata") or {}
    labels = meta.get("labels") or {}
    namespace, release = str(meta.get("namespace", "")), str(labels.get(names.HELM_NAME_LABEL, ""))
    status = labels.get(names.HELM_STATUS_LABEL)
    if event_type == "DELETED" or status in ("uninstalling", "uninstalled"):
        return Intake(IntakeKind.CANCEL if release else IntakeKind.IGNORE, namespace, release)
    return Intake(IntakeKind.PLAN if status == "deployed" else IntakeKind.IGNORE, namespace, release)


def written_before_grace(labels: Mapping[str, str], *, now: datetime, grace_seconds: int) -> bool:
    """Helm's `modifiedAt` label says the secret was last written before the grace period: the revision
    cannot be recent, so it is not even decoded (a start with thousands of deployed releases decodes none).
    A forged label can only make us skip a revision, which whoever can write the secret can do anyway."""
    value = labels.get(names.HELM_MODIFIED_AT_LABEL, "")
    if not value.isdigit() or len(value) > 12:
        return False
    return now - datetime.fromtimestamp(int(value), tz=UTC) > timedelta(seconds=grace_seconds + 60)


def is_recent(release: Release, *, now: datetime, grace_seconds: int) -> bool:
    """Only revisions deployed within the grace period get a run: no flood on first install."""
    deployed = release.last_deployed or release.first_deployed
    return deployed is not None and now - deployed <= timedelta(seconds=grace_seconds)
