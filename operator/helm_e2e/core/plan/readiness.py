"""The readiness gate (pure): is every object of a release's manifest rolled out, by `helm --wait` rules?

`list_rollout_objects` picks the objects worth waiting for out of Helm's multi-document manifest;
`check_object` judges one live object (a raw JSON dict, or None when it does not exist yet); `summarize`
folds the checks into one short line each for what failed and what is still pending.

The rules follow Helm's ReadyChecker (helm/helm pkg/kube/ready.go: `IsReady`, `deploymentReady`,
`statefulSetReady`, `daemonSetReady`, `jobReady`, `volumeReady`, `serviceReady`) and kstatus
(kubernetes-sigs/cli-utils pkg/kstatus/status/core.go: `deploymentConditions`, `stsConditions`,
`daemonsetConditions`, `jobConditions`, `podConditions`). Where they differ, the stricter rule wins,
because tests must not start against a half-rolled-out release (see each checker).

Custom resources (any API group that is not Kubernetes' own, BUILTIN_GROUPS) follow Helm 4's `--wait`:
Helm 4 waits with kstatus, as vendored from github.com/fluxcd/cli-utils v1.2.2 (helm v4.3.1 go.mod;
pkg/kube/statuswait.go), whose pkg/kstatus/status `Compute` looks at a resource without type-specific
rules in this order: `checkGenericProperties` (generic.go: deletionTimestamp → Terminating;
`checkGeneration`: status.observedGeneration, *when present*, != metadata.generation → InProgress;
condition Reconciling=True → InProgress, Stalled=True → Failed), then `checkReadyCondition`
(status.go: Ready=True → Current, Ready=False/Unknown → InProgress), else Current. Helm 3's
ReadyChecker never waits for them. See `_custom`. Other built-in kinds not listed never block.
Messages carry kinds, names, counts, phases and condition reasons only: never values or object content.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass
from typing import Any

from helm_e2e.core.sources.manifest import FieldPath, manifest_fields
from helm_e2e.errors import ReleaseDecodeError

MAX_MANIFEST_BYTES = 8 * 2**20  # a release decompresses to at most 32 MiB; a manifest this big is absurd
MAX_DOCUMENTS = 5000
MAX_OBJECTS = 500  # objects kept for the gate: one GET each per check
SUMMARY_ITEMS = 3  # pending/failed lines named in a summary before "and K more"

Obj = Mapping[str, Any]


@dataclass(frozen=True, order=True)
class ObjectKey:
    kind: str
    api_version: str
    namespace: str
    name: str

    @property
    def ref(self) -> str:
        """`deployment/web`, `pvc/data`: how messages name the object."""
        return f"{SHORT_KINDS.get(self.kind, self.kind.lower())}/{self.name}"


@dataclass(frozen=True)
class Readiness:
    ready: bool
    failed: bool = False
    pending: str = ""  # why not ready (or why failed): one short line naming the object


READY = Readiness(ready=True)


# --- the manifest --------------------------------------------------------------------------------------
def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


WANTED = frozenset(
    {("kind",), ("apiVersion",), ("metadata", "name"), ("metadata", "namespace"), ("spec", "type")}
)


# Kubernetes' own API groups (kube-apiserver v1.34 and the aggregated metrics API): anything else is a
# custom resource, judged by the generic kstatus rules Helm 4 waits with.
BUILTIN_GROUPS = frozenset(
    {"", "apps", "batch", "autoscaling", "policy", "extensions"}
    | {
        f"{g}.k8s.io"
        for g in (
            "admissionregistration", "authentication", "authorization", "apiextensions", "apiregistration",
            "certificates", "coordination", "discovery", "events", "networking", "node",
            "rbac.authorization", "resource", "scheduling", "storage", "storagemigration",
            "internal.apiserver", "flowcontrol.apiserver", "metrics",
        )
    }
)  # fmt: skip


def is_custom(api_version: str) -> bool:
    """A custom resource's apiVersion (group not one of Kubernetes' own; `v1` is the core group)."""
    return _group(api_version) not in BUILTIN_GROUPS


def _kept(fields: Mapping[FieldPath, str]) -> bool:
    kind, api_version = fields.get(("kind",)), fields.get(("apiVersion",))
    if kind is None or api_version is None:
        return False
    group = _group(api_version)
    if kind == "Service" and group == "":
        return fields.get(("spec", "type")) == "LoadBalancer"
    return (group, kind) in CHECKS or is_custom(api_version)


_DOCUMENT_START = re.compile(r"^---[ \t]*$", re.MULTILINE)
_KIND_LINE = re.compile(r"^kind:[ \t]*([A-Za-z0-9]+)[ \t]*$", re.MULTILINE)
_API_VERSION_LINE = re.compile(r"^apiVersion:[ \t]*([A-Za-z0-9./-]+)[ \t]*$", re.MULTILINE)


def _may_block(document: str, watched: Set[str]) -> bool:
    """False only when the document's top-level lines name a built-in kind that never blocks."""
    kind, api_version = _KIND_LINE.search(document), _API_VERSION_LINE.search(document)
    if kind is None or kind.group(1) in watched:
        return True
    return api_version is None or is_custom(api_version.group(1))


def _watched_documents(manifest: str) -> str:
    """The manifest without the documents whose top-level `kind:` and `apiVersion:` lines name a built-in
    kind that never blocks.

    A cheap text pass before the YAML scan (a release of 20,000 ConfigMaps costs a regex, not a parse);
    a document without such lines (flow style, unusual layout) is kept, so nothing that blocks is lost."""
    watched = {kind for _, kind in CHECKS} | {"Service"}
    documents = _DOCUMENT_START.split(manifest)
    kept = [d for d in documents if _may_block(d, watched)]
    return manifest if len(kept) == len(documents) else "\n---\n".join(kept)


def list_rollout_objects(manifest: str, *, namespace: str, other_namespaces: bool = False) -> list[ObjectKey]:
    """The objects of a Helm manifest the gate waits for, in manifest order, without duplicates.

    Objects without a namespace are in the release's. An object naming another namespace is dropped
    unless `other_namespaces`: where the operator looks is decided by the release secret, never by its
    content (DESIGN.md §5). Raises ReleaseDecodeError for a manifest that is too big, uses aliases, or
    is not YAML; the message never quotes the manifest. Parse once per revision, not on every pass.
    """
    if len(manifest.encode()) > MAX_MANIFEST_BYTES:
        raise ReleaseDecodeError(f"manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    keys: dict[ObjectKey, None] = {}
    for fields in manifest_fields(_watched_documents(manifest), wanted=WANTED, max_documents=MAX_DOCUMENTS):
        name, ns = fields.get(("metadata", "name")), fields.get(("metadata", "namespace")) or namespace
        if not _kept(fields) or not name or (ns != namespace and not other_namespaces):
            continue
        keys[ObjectKey(fields[("kind",)], fields[("apiVersion",)], ns, name)] = None
        if len(keys) > MAX_OBJECTS:
            raise ReleaseDecodeError(f"manifest has more than {MAX_OBJECTS} objects to wait for")
    return list(keys)


# --- one object --------------------------------------------------------------------------------------
def _int(obj: Obj, *path: str, default: int = 0) -> int:
    node: Any = obj
    for part in path:
        node = node.get(part) if isinstance(node, Mapping) else None
    return node if isinstance(node, int) and not isinstance(node, bool) else default


def _condition(obj: Obj, kind: str) -> Obj | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == kind:
            return cond
    return None


def _is_true(obj: Obj, kind: str) -> bool:
    cond = _condition(obj, kind)
    return cond is not None and cond.get("status") == "True"


def _phase(obj: Obj) -> str:
    return str((obj.get("status") or {}).get("phase") or "Pending")[:32]  # a status string, kept short


def _generation_lag(ref: str, obj: Obj) -> Readiness | None:
    """The controller has not seen the latest spec yet (helm: observedGeneration != generation)."""
    observed = _int(obj, "status", "observedGeneration", default=-1)
    if observed < _int(obj, "metadata", "generation", default=0):
        return Readiness(ready=False, pending=f"{ref} generation not observed yet")
    return None


def _deployment(ref: str, obj: Obj) -> Readiness:
    """Helm `IsReady` case Deployment + `deploymentReady`; counts as kstatus `deploymentConditions`.

    Paused counts as ready (helm --wait uses PausedAsReady(true)). Instead of helm's extra LIST of
    ReplicaSets to find the new one, `status.replicas` (pods of *all* ReplicaSets, not terminating) must
    equal `updatedReplicas` (pods of the new one): old pods remaining means an old ReplicaSet still runs
    (kstatus "Pending termination"). Ready and available must reach spec.replicas, stricter than helm's
    replicas - maxUnavailable: tests must not start against a rollout that may still lose a pod.
    """
    if (obj.get("spec") or {}).get("paused") is True:
        return READY
    if lag := _generation_lag(ref, obj):
        return lag
    progressing = _condition(obj, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Readiness(ready=False, failed=True, pending=f"{ref} progress deadline exceeded")
    want = _int(obj, "spec", "replicas", default=1)
    replicas, updated = _int(obj, "status", "replicas"), _int(obj, "status", "updatedReplicas")
    if updated < want:
        return Readiness(ready=False, pending=f"{ref} {updated}/{want} updated")
    if replicas > updated:
        return Readiness(ready=False, pending=f"{ref} {replicas - updated} old replica(s) still running")
    if replicas > want:
        return Readiness(ready=False, pending=f"{ref} {replicas - want} replica(s) pending termination")
    for field in ("ready", "available"):
        have = _int(obj, "status", f"{field}Replicas")
        if have < want:
            return Readiness(ready=False, pending=f"{ref} {have}/{want} {field}")
    return READY


def _statefulset(ref: str, obj: Obj) -> Readiness:
    """Helm `statefulSetReady`: OnDelete never waits; partition P means replicas - P updated pods; every
    replica ready; with no partition, currentRevision == updateRevision."""
    if lag := _generation_lag(ref, obj):
        return lag
    strategy = (obj.get("spec") or {}).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return READY
    want = _int(obj, "spec", "replicas", default=1)
    partition = _int(obj, "spec", "updateStrategy", "rollingUpdate", "partition")
    updated, ready = _int(obj, "status", "updatedReplicas"), _int(obj, "status", "readyReplicas")
    if updated < want - partition:
        return Readiness(ready=False, pending=f"{ref} {updated}/{want - partition} updated")
    if ready != want:
        return Readiness(ready=False, pending=f"{ref} {ready}/{want} ready")
    status = obj.get("status") or {}
    if partition == 0 and status.get("currentRevision") != status.get("updateRevision"):
        return Readiness(ready=False, pending=f"{ref} revision not rolled out")
    return READY


def _daemonset(ref: str, obj: Obj) -> Readiness:
    """Helm `daemonSetReady` (generation, OnDelete never waits, updated == desired); ready and available
    must reach desired as in kstatus, stricter than helm's desired - maxUnavailable (on one node helm
    would pass with no daemon pod ready)."""
    if lag := _generation_lag(ref, obj):
        return lag
    strategy = (obj.get("spec") or {}).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return READY
    desired = _int(obj, "status", "desiredNumberScheduled")
    updated = _int(obj, "status", "updatedNumberScheduled")
    if updated != desired:
        return Readiness(ready=False, pending=f"{ref} {updated}/{desired} updated")
    for field, label in (("numberReady", "ready"), ("numberAvailable", "available")):
        if (have := _int(obj, "status", field)) < desired:
            return Readiness(ready=False, pending=f"{ref} {have}/{desired} {label}")
    return READY


def _job(ref: str, obj: Obj) -> Readiness:
    """kstatus `jobConditions` (helm `jobReady` with --wait-for-jobs): Complete, or Failed for good."""
    if _is_true(obj, "Complete"):
        return READY
    if _is_true(obj, "Failed"):
        return Readiness(ready=False, failed=True, pending=f"{ref} failed")
    return Readiness(ready=False, pending=f"{ref} not complete")


def _pod(ref: str, obj: Obj) -> Readiness:
    """Helm `isPodReady` (Ready=True) or phase Succeeded (kstatus). A Failed pod never becomes ready."""
    phase = _phase(obj)
    if phase == "Succeeded" or _is_true(obj, "Ready"):
        return READY
    if phase == "Failed":
        return Readiness(ready=False, failed=True, pending=f"{ref} Failed")
    return Readiness(ready=False, pending=f"{ref} {phase}, not ready")


def _pvc(ref: str, obj: Obj) -> Readiness:
    """Helm `volumeReady`: phase Bound. Lost (its volume is gone) never recovers."""
    phase = _phase(obj)
    if phase == "Bound":
        return READY
    return Readiness(ready=False, failed=phase == "Lost", pending=f"{ref} {phase}")


def _service(ref: str, obj: Obj) -> Readiness:
    """Helm `serviceReady`: a LoadBalancer needs an ingress, unless spec.externalIPs is set."""
    spec = obj.get("spec") or {}
    if spec.get("type") != "LoadBalancer" or spec.get("externalIPs"):
        return READY
    if ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
        return READY
    return Readiness(ready=False, pending=f"{ref} load balancer has no ingress yet")


_REASON = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")


def _because(cond: Obj) -> str:
    """A condition's reason when it is a CamelCase word (never its free-text message)."""
    reason = cond.get("reason")
    return f" ({reason})" if isinstance(reason, str) and _REASON.fullmatch(reason) else ""


def _custom(ref: str, obj: Obj) -> Readiness:
    """kstatus `Compute` for a resource without type-specific rules, as Helm 4 waits for it (module
    docstring). Unlike `_generation_lag`, a missing status.observedGeneration is no lag (kstatus
    `checkGeneration`); Stalled=True is kstatus Failed, which Helm 4 stops waiting for and fails."""
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return Readiness(ready=False, pending=f"{ref} terminating")
    observed = _int(obj, "status", "observedGeneration", default=-1)
    if observed != -1 and observed != _int(obj, "metadata", "generation", default=observed):
        return Readiness(ready=False, pending=f"{ref} generation not observed yet")
    if (cond := _condition(obj, "Reconciling")) is not None and cond.get("status") == "True":
        return Readiness(ready=False, pending=f"{ref} reconciling{_because(cond)}")
    if (cond := _condition(obj, "Stalled")) is not None and cond.get("status") == "True":
        return Readiness(ready=False, failed=True, pending=f"{ref} stalled{_because(cond)}")
    ready = _condition(obj, "Ready")
    if ready is not None and ready.get("status") in ("False", "Unknown"):
        return Readiness(ready=False, pending=f"{ref} Ready={ready.get('status')}{_because(ready)}")
    return READY


Checker = Callable[[str, Obj], Readiness]
CHECKS: dict[tuple[str, str], Checker] = {  # (API group, kind)
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("batch", "Job"): _job,
    ("", "Pod"): _pod,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "Service"): _service,
}
SHORT_KINDS = {"PersistentVolumeClaim": "pvc"}


def check_object(key: ObjectKey, obj: Obj | None) -> Readiness:
    """Is this live object rolled out? None = not found (yet). Built-in kinds not in CHECKS never block;
    custom resources follow kstatus (`_custom`)."""
    check = CHECKS.get((_group(key.api_version), key.kind))
    if check is None and is_custom(key.api_version):
        check = _custom
    if check is None:
        return READY
    if obj is None:
        return Readiness(ready=False, pending=f"{key.ref} not found yet")
    return check(key.ref, obj)


def summarize(checks: Iterable[Readiness], *, limit: int = SUMMARY_ITEMS) -> tuple[bool, str, str]:
    """(all ready, what failed, what is pending), each text naming at most `limit` objects."""
    checks = list(checks)
    failed = [c.pending for c in checks if c.failed]
    pending = [c.pending for c in checks if not c.ready and not c.failed]
    return not failed and not pending, _first(failed, limit), _first(pending, limit)


def _first(lines: list[str], limit: int) -> str:
    text = ", ".join(lines[:limit])
    return f"{text} and {len(lines) - limit} more" if len(lines) > limit else text
