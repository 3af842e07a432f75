"""Argo CD Applications as a source of deploys (pure): which sync to test, when, and what it deployed.

Argo CD renders charts itself and writes no Helm release Secrets (and skips `helm.sh/hook: test`), so its
deploys are read from the Application: a successful, non-dry-run sync appends `status.history[]` (`id` = the
last + 1, `revision`, `deployedAt`, `source`); `status.operationState.phase` says how the last operation
ended and `status.health.status` whether the application is Healthy. A new history id whose operation
Succeeded is tested once the application is Healthy, as run `<app>-a<id>` in the application's destination
namespace (in this cluster only); one not Healthy within the readiness timeout gets a run that ends Error,
naming what is not healthy. The E2ESuites of that namespace select applications with
`spec.applications{names, labels}`: a tenant's suite can only ever test what is deployed into its own
namespace. Argo owns sync, so nothing here rolls back: the report says how (docs/gitops.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from helm_e2e.core.model import names
from helm_e2e.core.model.dns_names import MAX_NAME
from helm_e2e.core.model.release import ManagedBy, Release, Trigger
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.suite import ApplicationSelector
from helm_e2e.core.model.times import parse_time

IN_CLUSTER = frozenset({"https://kubernetes.default.svc", "https://kubernetes.default.svc/"})
MAX_UNHEALTHY = 5  # resources named in a not-healthy message
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$")


class Verdict(StrEnum):
    TEST = "test"  # a new sync, Healthy: plan its run
    WAIT = "wait"  # a new sync, not Healthy yet
    NOT_READY = "not-ready"  # not Healthy within the timeout: a run that ends Error
    NONE = "none"  # nothing to test (no successful sync, elsewhere, malformed)


@dataclass(frozen=True)
class Sync:
    """One successful sync of an application, as the run records it."""

    app: str
    app_namespace: str
    uid: str
    namespace: str  # the destination namespace: where the run and its pods live
    history_id: int
    revision: str
    deployed_at: datetime | None
    labels: Mapping[str, str]
    synced: Mapping[str, Any] = field(default_factory=dict)  # the history entry's `source`/`sources`


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    sync: Sync | None = None
    message: str = ""  # why not ready / why nothing


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        obj = obj.get(part) if isinstance(obj, Mapping) else None
    return obj


def build_run_name(app: str, history_id: int) -> str:
    """`<app>-a<id>`: never a Helm release run's `<release>-<revision>` (a revision is digits only)."""
    suffix = f"-a{history_id}"
    return f"{app[: MAX_NAME - len(suffix)].rstrip('-.')}{suffix}"


def build_attempt_run_name(app: str, history_id: int, attempt: int) -> str:
    """A sync's n-th run: `<app>-a<id>` first, then `<app>-a<id>-r<n>` (a re-run). Never a Helm run's name
    (`<release>-<digits>[-r<digits>]`: `a<id>` is not digits) nor another sync's first run (`-r<n>` last)."""
    suffix = f"-a{history_id}-r{attempt}"
    return (
        build_run_name(app, history_id)
        if attempt <= 1
        else f"{app[: MAX_NAME - len(suffix)].rstrip('-.')}{suffix}"
    )


def latest_sync(app: Mapping[str, Any]) -> Sync | None:
    """The newest history entry of an in-cluster application with a destination namespace."""
    meta = app.get("metadata") or {}
    destination = _get(app, "spec", "destination") or {}
    namespace = str(destination.get("namespace") or "")
    in_cluster = destination.get("server") in IN_CLUSTER or destination.get("name") == "in-cluster"
    history = [h for h in (_get(app, "status", "history") or []) if isinstance(h, Mapping)]
    ids = [h["id"] for h in history if isinstance(h.get("id"), int) and not isinstance(h.get("id"), bool)]
    if not namespace or not in_cluster or not ids or not meta.get("name"):
        return None
    entry = next(h for h in history if h.get("id") == max(ids))
    revision = entry.get("revision") or ",".join(str(r) for r in entry.get("revisions") or [])
    labels = meta.get("labels") or {}
    return Sync(
        app=str(meta["name"]),
        app_namespace=str(meta.get("namespace") or ""),
        uid=str(meta.get("uid") or ""),
        namespace=namespace,
        history_id=max(ids),
        revision=str(revision)[:256],
        deployed_at=parse_time(entry.get("deployedAt")),
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {},
        synced={k: entry[k] for k in ("source", "sources") if k in entry},
    )


def decide_sync(app: Mapping[str, Any], *, now: datetime, ready_timeout_seconds: int) -> Decision:
    """Whether the application's newest sync is to be tested now, waited for, or ended not ready."""
    sync = latest_sync(app)
    if sync is None:
        return Decision(Verdict.NONE, message="no successful in-cluster sync in status.history")
    if _get(app, "status", "operationState", "phase") != "Succeeded":
        return Decision(Verdict.NONE, sync, "the last operation did not succeed")
    health = str(_get(app, "status", "health", "status") or "Unknown")
    if health == "Healthy":
        return Decision(Verdict.TEST, sync)
    since = sync.deployed_at or parse_time(_get(app, "status", "operationState", "finishedAt")) or now
    if (now - since).total_seconds() < ready_timeout_seconds:
        return Decision(Verdict.WAIT, sync, f"application {health}")
    return Decision(Verdict.NOT_READY, sync, describe_unhealthy(app, health, ready_timeout_seconds))


def describe_unhealthy(app: Mapping[str, Any], health: str, timeout: int) -> str:
    """`not Healthy within 600s: Degraded; deployment/web Degraded (...)`, at most MAX_UNHEALTHY named."""
    parts = []
    for r in _get(app, "status", "resources") or []:
        state = _get(r, "health", "status")
        if isinstance(r, Mapping) and state and state != "Healthy":
            why = str(_get(r, "health", "message") or "")[:120]
            kind, name = str(r.get("kind", "")).lower(), r.get("name", "")
            parts.append(f"{kind}/{name} {state}" + (f" ({why})" if why else ""))
    more = f"; {len(parts) - MAX_UNHEALTHY} more" if len(parts) > MAX_UNHEALTHY else ""
    named = "; ".join(parts[:MAX_UNHEALTHY]) + more
    return f"application not Healthy within {timeout}s: {health}" + (f"; {named}" if named else "")


def _source(app: Mapping[str, Any], sync: Sync | None = None) -> Mapping[str, Any]:
    """What the sync deployed: its history entry's source (Argo records it there), else the application's
    spec (an entry without one); from either, `source`, else the first of `sources` with Helm settings
    (multi-source), else the first. A re-run therefore tests what was synced, whatever the spec says now."""
    synced = _pick_source(sync.synced) if sync is not None else {}
    return synced or _pick_source(_get(app, "spec") or {})


def _pick_source(holder: Mapping[str, Any]) -> Mapping[str, Any]:
    source = holder.get("source")
    sources = holder.get("sources")
    if isinstance(source, Mapping):
        return source
    if not isinstance(sources, list) or not sources or not isinstance(sources[0], Mapping):
        return {}
    found = next((s for s in sources if isinstance(s, Mapping) and s.get("helm")), sources[0])
    return found if isinstance(found, Mapping) else {}


def _set_path(values: dict[str, Any], path: str, value: Any) -> None:
    node = values
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
    node[parts[-1]] = value


def app_values(app: Mapping[str, Any], sync: Sync | None = None) -> dict[str, Any]:
    """The Helm values the application sets: `helm.valuesObject`, then `helm.parameters` over it."""
    helm = _source(app, sync).get("helm") or {}
    values = dict(helm.get("valuesObject") or {}) if isinstance(helm.get("valuesObject"), Mapping) else {}
    for p in helm.get("parameters") or []:
        if isinstance(p, Mapping) and isinstance(p.get("name"), str) and p["name"]:
            _set_path(values, p["name"][:253], str(p.get("value", "")))
    return values


def image_tag_of_summary(app: Mapping[str, Any]) -> str:
    """The tag of the application's first image (`status.summary.images`), '' without one."""
    images = _get(app, "status", "summary", "images") or []
    first = next((i for i in images if isinstance(i, str) and i), "")
    name = first.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else ""


def build_release(app: Mapping[str, Any], sync: Sync) -> Release:
    """The sync as the planner sees a release: values from the application, no chart hooks (Argo skips
    them), trigger `sync`; `appVersion` is the tag of its first image (the image tag's fallback)."""
    source = _source(app, sync)
    path = str(source.get("path") or "").rstrip("/").rsplit("/", 1)[-1]
    chart = str(source.get("chart") or path or sync.app)
    return Release(
        name=sync.app,
        namespace=sync.namespace,
        revision=sync.history_id,
        status="deployed",
        chart_name=chart[:253],
        chart_version=str(source.get("targetRevision") or "")[:128],
        app_version=image_tag_of_summary(app)[:128],
        values=app_values(app, sync),
        last_deployed=sync.deployed_at,
        trigger=Trigger.SYNC,
        app_labels=dict(sync.labels),
    )


def managed_by(sync: Sync) -> ManagedBy:
    return ManagedBy(kind=names.MANAGED_BY_ARGOCD, name=sync.app, namespace=sync.app_namespace)


def application_of(run: Run) -> ManagedBy | None:
    """The Application a run was planned from, None for a Helm release's run."""
    managed = run.spec.release.managed_by
    return managed if managed is not None and managed.kind == names.MANAGED_BY_ARGOCD else None


def commit_of(sync: Sync) -> str:
    return sync.revision if _REVISION.match(sync.revision) else ""


def selects(selector: ApplicationSelector | None, *, app: str, labels: Mapping[str, str]) -> bool:
    """A suite tests an application only when it asks for it: by name, or by all of its labels."""
    if selector is None or (not selector.names and not selector.labels):
        return False
    by_labels = bool(selector.labels) and all(labels.get(k) == v for k, v in selector.labels.items())
    return app in selector.names or by_labels


def describe_argocd_rollback(managed: ManagedBy, history_id: int) -> str:
    """How to roll back an application that failed its tests (Argo owns sync: the operator never does)."""
    earlier = f" {history_id - 1}" if history_id > 1 else " <history id>"
    return (
        f"managed by Argo CD Application {managed.namespace}/{managed.name}: not rolled back (Argo owns "
        f"sync); revert the change in git, or `argocd app rollback {managed.name}{earlier}` (auto-sync off)"
    )
