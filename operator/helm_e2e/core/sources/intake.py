"""Helm release secret events → what to do about them (pure).

The event's metadata alone decides most cases, before anything is decoded: a revision that is not
`deployed` needs nothing, an uninstall cancels runs, and only a deployed revision is decoded and planned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from helm_e2e.core.model import names
from helm_e2e.core.model.release import Release
from helm_e2e.core.model.times import parse_time
from helm_e2e.core.sources.helm_secret import parse_secret_name

CLOCK_SKEW_SECONDS = 60  # the apiserver's clock against that of the helm client stamping the release


class IntakeKind(StrEnum):
    IGNORE = "Ignore"  # not deployed, uninstalling: nothing to do yet
    CANCEL = "Cancel"  # uninstalled: the release's active runs end Cancelled
    # its deployed revision left the watch (superseded, or deleted): cancel if no installed revision is
    # left (one LIST), asked only if no deployed revision arrives meanwhile (reconcile/release_checks.py)
    CHECK = "Check"
    PLAN = "Plan"  # deployed: decode, plan, create the run


@dataclass(frozen=True)
class Intake:
    kind: IntakeKind
    namespace: str
    release: str


def classify_secret_event(event_type: str | None, secret: Mapping[str, Any]) -> Intake:
    """The watch selects a release's deployed revision and an uninstall's marks only
    (names.HELM_SECRET_SELECTOR), so a Secret's labels in its event say what happened: `helm uninstall`
    marks the deployed revision `uninstalling`, then deletes every revision (the marked one's DELETED
    arrives) or, with `--keep-history`, marks it `uninstalled`. An upgrade relabels the old revision
    `superseded`: it left the selection, and the apiserver says so with DELETED and the object as it was
    before, still `deployed` (kube-apiserver 1.34, tried) -- just like a hand deletion, hence CHECK."""
    meta = secret.get("metadata") or {}
    labels = meta.get("labels") or {}
    namespace, release = str(meta.get("namespace", "")), str(labels.get(names.HELM_NAME_LABEL, ""))
    status = labels.get(names.HELM_STATUS_LABEL)
    return Intake(_kind(event_type, status) if release else IntakeKind.IGNORE, namespace, release)


def _kind(event_type: str | None, status: object) -> IntakeKind:
    if status == "uninstalled" or (event_type == "DELETED" and status == "uninstalling"):
        return IntakeKind.CANCEL
    if event_type == "DELETED":
        # the deployed revision deleted by hand or with its namespace: is anything of the release left?
        return IntakeKind.CHECK if status == "deployed" else IntakeKind.IGNORE
    return IntakeKind.PLAN if status == "deployed" else IntakeKind.IGNORE


def installed_revisions(labels: Iterable[Mapping[str, str]]) -> int:
    """How many of a release's stored revisions (their Secrets' labels) are still installed; 0 = the
    release is uninstalled (an uninstall's marks do not count, `--keep-history` leaves them stored)."""
    return sum(1 for lab in labels if lab.get(names.HELM_STATUS_LABEL) not in names.HELM_UNINSTALL_STATUSES)


def created_before_grace(secret: Mapping[str, Any], *, now: datetime, grace_seconds: int) -> bool:
    """The apiserver created this revision's Secret before the grace period, so the revision cannot be
    recent (Helm creates it when the install/upgrade/rollback starts, and stamps `last_deployed` then): it
    is not even decoded, and a start with thousands of deployed releases decodes none. Helm's own
    `modifiedAt` label cannot say this: Helm 3.19 carries it over from the release's first revision."""
    when = parse_time((secret.get("metadata") or {}).get("creationTimestamp"))
    if when is None or when.tzinfo is None:
        return False
    return now - when > timedelta(seconds=grace_seconds + CLOCK_SKEW_SECONDS)


def is_recent(release: Release, *, now: datetime, grace_seconds: int) -> bool:
    """Only revisions deployed within the grace period get a run: no flood on first install."""
    deployed = release.last_deployed or release.first_deployed
    return deployed is not None and now - deployed <= timedelta(seconds=grace_seconds)


def cancels_runs(installed: int) -> bool:
    """After a CHECK counted the release's installed revisions (`installed_revisions`): none is left."""
    return installed == 0


def run_key_of_secret(secret: Mapping[str, Any]) -> tuple[str, int] | None:
    """(release, revision) named by a Helm release Secret's name, before it is decoded: once
    `helm_secret.check_secret_identity` passed, the decoded release carries the same (decoding checks it)."""
    meta = secret.get("metadata") or {}
    return parse_secret_name(str(meta.get("name") or ""))


MAX_ATTEMPT_TRIES = 3  # a request racing others for the same attempt number (409) decides again this often


class AttemptStep(StrEnum):
    DONE = "Done"  # the run was created
    RETRY = "Retry"  # another request took the attempt's name first (409): decide the attempt again
    GIVE_UP = "GiveUp"  # out of tries


def decide_after_attempt(*, created: bool, tries: int) -> AttemptStep:
    """After trying to create attempt number `tries` (1-based) of a requested run whose plan has tests to
    run: a creation the API refused (409) is decided again, at most MAX_ATTEMPT_TRIES times in all."""
    if created:
        return AttemptStep.DONE
    return AttemptStep.RETRY if tries < MAX_ATTEMPT_TRIES else AttemptStep.GIVE_UP


def timings_ms(marks: Mapping[str, float] | None, *, creating_at: float, now: float) -> dict[str, float]:
    """Milliseconds of each intake step from its monotonic `marks`, for finding where trigger latency
    goes: the handler's receipt to the first read (`wait_ms`), reading what the plan needs (`get_ms`: the
    namespace's suites and test accounts, from the watches once primed, and the GET of the run when asking
    first), decoding and planning in one sandbox call (`plan_ms`, with any wait for a free worker),
    creating the run; `intake_ms` is the handler's receipt to the run's creation (`now`). Without marks
    (a requested run): the creation only."""
    if marks is None:
        return {"create_ms": _ms(creating_at, now)}
    return {
        "wait_ms": _ms(marks["received"], marks["read"]),
        "get_ms": _ms(marks["read"], marks["planning"]),
        "plan_ms": _ms(marks["planning"], marks["planned"]),
        "create_ms": _ms(creating_at, now),
        "intake_ms": _ms(marks["received"], now),
    }


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 1)
