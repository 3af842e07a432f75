"""A release's chart test hooks → the hook set `helm test` would run (pure planning).

`helm test` (Helm v3.19 pkg/action/hooks.go `execHook`) takes every hook whose events include `test`
(`test-success` is stored as `test` since Helm 3; both are accepted here), orders them by weight, then name,
then kind in Helm's install order (a stable sort by `hookByWeight` over hooks pre-sorted by kind), deletes
an earlier copy (`before-hook-creation`, the default when no policy is given), creates each and waits for
Pods and Jobs to finish. Here the supporting objects (kinds in `hook_trust`) are created first, in that
order (but every Role before any RoleBinding: a binding may only name a Role this set just created), then
every test Pod and Job. What we refuse (hook_trust's docstring) is listed in `refused`, and
then every test of the set is blocked with the reason: a refused hook means the set cannot run as written.

Supporting objects keep the chart's names (test pods refer to them by name), get the release's namespace,
our labels (the chart's own `helm-e2e.dev/*` labels and annotations are dropped), and (in
`build_resource_manifest`) an ownerReference to the E2ERun so they go with it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence, Set
from typing import Any

from pydantic import BaseModel, Field

from helm_e2e.core.model import names
from helm_e2e.core.model.dns_names import label_value, sanitize_test_name
from helm_e2e.core.model.release import Hook, Release
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_codec import build_owner_reference
from helm_e2e.core.model.run_status import RunPhase
from helm_e2e.core.plan.hook_trust import KEPT_FIELDS, TEST_KINDS, refuse_content, refuse_kind
from helm_e2e.core.plan.hook_yaml import HookManifestInvalid, parse_hook_manifest
from helm_e2e.core.plan.planned_test import PlannedTest

# Helm v3.19 pkg/releaseutil/kind_sorter.go InstallOrder (ties of weight and name are broken by it)
INSTALL_ORDER = (
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
    "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
    "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
    "ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding",
    "RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
    "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
)  # fmt: skip
_KIND_RANK = {kind: i for i, kind in enumerate(INSTALL_ORDER)}
_GO_INT = re.compile(r"^[+-]?[0-9]+$")  # what Go's strconv.Atoi accepts
OUR_PREFIX = f"{names.GROUP}/"  # labels and annotations only the operator sets on what it creates
RETRIES_ANNOTATION = f"{names.GROUP}/retries"  # on a chart test hook: further attempts after a Failed one
MAX_RETRIES = 10
OUTPUT_LOG_POLICY_ANNOTATION = "helm.sh/hook-output-log-policy"  # Helm 4 (release.HookOutputLogAnnotation)
HOOK_OUTPUT_ON_SUCCEEDED = "hook-succeeded"
_INT64 = 2**63
# Job fields dropped: the Job controller picks the selector; we own the Job's lifetime and start
DROPPED_JOB_FIELDS = (
    "template", "selector", "manualSelector", "ttlSecondsAfterFinished", "suspend", "managedBy"
)  # fmt: skip


class HookResource(BaseModel):
    """A supporting object of the hook set; `body` has the release's namespace and our labels, no owner."""

    kind: str
    api_version: str
    name: str
    weight: int = 0
    delete_policies: frozenset[str] = frozenset()
    body: dict[str, Any]


class HookSet(BaseModel):
    resources: list[HookResource] = Field(default_factory=list)  # supporting objects, creation order
    tests: list[PlannedTest] = Field(default_factory=list)  # Pods and Jobs, Helm's order
    refused: list[str] = Field(default_factory=list)  # one line each: kind, name, rule; never a value
    service_accounts: frozenset[str] = frozenset()  # created by the set: hook pods may run as these


def parse_hook_weight(annotations: Mapping[str, str]) -> int:
    """`helm.sh/hook-weight` as Helm reads it: strconv.Atoi, anything else is 0."""
    text = annotations.get(names.HOOK_WEIGHT_ANNOTATION, "")
    value = int(text) if _GO_INT.match(text) else 0
    return value if -_INT64 <= value < _INT64 else 0


def parse_delete_policies(annotations: Mapping[str, str]) -> frozenset[str]:
    """`helm.sh/hook-delete-policy`, comma-separated, trimmed, lower-cased; absent = before-hook-creation."""
    if names.HOOK_DELETE_POLICY_ANNOTATION not in annotations:
        return frozenset({names.HOOK_BEFORE_CREATION})
    parts = annotations[names.HOOK_DELETE_POLICY_ANNOTATION].split(",")
    return frozenset(p.strip().lower() for p in parts if p.strip())


def parse_output_log_policies(annotations: Mapping[str, str]) -> frozenset[str]:
    """`helm.sh/hook-output-log-policy` as Helm 4 reads it (pkg/release/v1/util manifest_sorter.go
    `operateAnnotationValues`: comma-separated, trimmed, lower-cased): `hook-succeeded`, `hook-failed`."""
    parts = annotations.get(OUTPUT_LOG_POLICY_ANNOTATION, "").split(",")
    return frozenset(p.strip().lower() for p in parts if p.strip())


def _log_on_success(meta: Mapping[str, Any]) -> bool:
    """Helm 4 copies a hook's container logs to its output when the hook ends as a policy says
    (pkg/action/hooks.go `outputLogsByPolicy`). helm-e2e records every test's log tail anyway and its
    report shows those of failed tests, so `hook-failed` asks for nothing more; `hook-succeeded` adds the
    log of a test that passed to the report."""
    return HOOK_OUTPUT_ON_SUCCEEDED in parse_output_log_policies(_strings(meta.get("annotations")))


def helm_order_key(weight: int, name: str, kind: str) -> tuple[int, str, int, str]:
    """Weight, then name, then kind in Helm's install order (unknown kinds last, by kind name)."""
    return weight, name, _KIND_RANK.get(kind, len(_KIND_RANK)), kind


def _mapping(node: Any) -> Mapping[str, Any]:
    return node if isinstance(node, Mapping) else {}


def _strings(node: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in _mapping(node).items() if v is not None}


def _own_annotations(meta: Mapping[str, Any]) -> dict[str, str]:
    return {k: v for k, v in _strings(meta.get("annotations")).items() if not k.startswith("helm.sh/hook")}


def _timeout(default: int, *annotation_sets: Mapping[str, str]) -> int:
    for given in annotation_sets:
        text = given.get(names.TIMEOUT_ANNOTATION, "").strip()
        if text.isdigit() and int(text) > 0:
            return int(text)
    return default


def _retries(annotations: Mapping[str, str]) -> int | None:
    """`helm-e2e.dev/retries` on a chart test hook: 0 to 10; absent or invalid = the operator default."""
    text = annotations.get(RETRIES_ANNOTATION, "").strip()
    return int(text) if text.isdigit() and int(text) <= MAX_RETRIES else None


def _test(doc: Mapping[str, Any], *, default_timeout: int) -> PlannedTest | str:
    """A test Pod or Job → PlannedTest, or why it cannot run."""
    meta, spec = _mapping(doc.get("metadata")), _mapping(doc.get("spec"))
    name = sanitize_test_name(str(meta["name"]))
    if doc["kind"] == "Pod":
        if not spec:
            return "no pod spec"
        annotations = _own_annotations(meta)
        return PlannedTest(
            name=name,
            source="hook",
            timeout_seconds=_timeout(default_timeout, annotations),
            pod_spec=dict(spec),
            labels=_strings(meta.get("labels")),
            annotations=annotations,
            retries=_retries(annotations),
            log_on_success=_log_on_success(meta),
        )
    template = _mapping(spec.get("template"))
    pod_meta, pod_spec = _mapping(template.get("metadata")), _mapping(template.get("spec"))
    if not pod_spec:
        return "no pod template spec"
    job_annotations, pod_annotations = _own_annotations(meta), _strings(pod_meta.get("annotations"))
    return PlannedTest(
        name=name,
        source="hook",
        kind="Job",
        timeout_seconds=_timeout(default_timeout, job_annotations, pod_annotations),
        pod_spec=dict(pod_spec),
        labels=_strings(pod_meta.get("labels")),
        annotations=pod_annotations,
        job_spec={k: v for k, v in spec.items() if k not in DROPPED_JOB_FIELDS},
        job_labels=_strings(meta.get("labels")),
        job_annotations=job_annotations,
        log_on_success=_log_on_success(meta),
    )


def _without_ours(pairs: Mapping[str, str]) -> dict[str, str]:
    """Labels or annotations without `helm-e2e.dev/*`: only the operator writes those (a hook ServiceAccount
    labelled `helm-e2e.dev/test-account=true` would become an account every suite may name)."""
    return {k: v for k, v in pairs.items() if not k.startswith(OUR_PREFIX)}


def _resource_body(doc: Mapping[str, Any], release: Release) -> dict[str, Any]:
    kind, meta = str(doc["kind"]), _mapping(doc.get("metadata"))
    labels = {
        **_without_ours(_strings(meta.get("labels"))),
        names.MANAGED_BY_LABEL: names.MANAGED_BY,
        names.RELEASE_LABEL: label_value(release.name),
        names.REVISION_LABEL: str(release.revision),
    }
    metadata = {
        "name": str(meta["name"]),
        "namespace": release.namespace,
        "labels": labels,
        "annotations": {**_without_ours(_own_annotations(meta)), names.SOURCE_ANNOTATION: "hook"},
    }
    body = {"apiVersion": doc["apiVersion"], "kind": kind, "metadata": metadata}
    body.update({k: copy.deepcopy(doc[k]) for k in KEPT_FIELDS[kind] if k in doc})
    return body


def _parse(hook: Hook) -> tuple[dict[str, Any] | None, str]:
    """The hook's object with kind, apiVersion and name checked, or None and a refusal line."""
    try:
        doc = parse_hook_manifest(hook.manifest)
    except HookManifestInvalid as e:
        return None, f"{hook.kind or '?'} {hook.name or '?'}: {e}"
    kind, api_version = str(doc.get("kind") or ""), str(doc.get("apiVersion") or "")
    name = _mapping(doc.get("metadata")).get("name")
    where = f"{kind or '?'} {name or hook.name or '?'}"
    if not isinstance(name, str) or not name:
        return None, f"{where}: metadata.name is missing"
    why = refuse_kind(kind, api_version)
    return (None, f"{where}: {why}") if why else (doc, "")


Ordered = list[tuple[tuple[int, str, int, str], dict[str, Any]]]


def _parsed_hooks(release: Release, default_timeout: int) -> tuple[Ordered, list[str], list[PlannedTest]]:
    """The release's test hooks that parse, in Helm's order; refusal lines; tests blocked by them."""
    accepted: Ordered = []
    refused: list[str] = []
    blocked: list[PlannedTest] = []
    for hook in release.hooks:
        if names.HOOK_TEST_EVENTS.isdisjoint(hook.events):
            continue
        doc, why = _parse(hook)
        if doc is None:
            refused.append(why)
            if hook.kind in TEST_KINDS:  # a test that cannot run still ends, with why: never "no tests"
                blocked.append(_blocked_test(hook.name, why, default_timeout))
            continue
        meta = _mapping(doc.get("metadata"))
        weight = parse_hook_weight(_strings(meta.get("annotations")))
        accepted.append((helm_order_key(weight, str(meta["name"]), str(doc["kind"])), doc))
    accepted.sort(key=lambda pair: pair[0])
    return accepted, refused, blocked


def build_hook_set(release: Release, *, default_timeout: int) -> HookSet:
    """Every `test` hook of the release, ordered as Helm orders them (then every Role before any
    RoleBinding), checked against the trust rules."""
    accepted, refused, hook_set_blocked = _parsed_hooks(release, default_timeout)
    roles = _accepted_names(accepted, release, "Role")
    accounts = _accepted_names(accepted, release, "ServiceAccount")
    hook_set = HookSet()
    seen: set[tuple[str, str]] = set()
    for (weight, name, _, kind), doc in accepted:
        where = f"{kind} {name}"
        if kind in TEST_KINDS:  # same-named tests each run (Helm recreates them): the planner numbers them
            test = _test(doc, default_timeout=default_timeout)
            if isinstance(test, str):
                refused.append(f"{where}: {test}")
                hook_set.tests.append(_blocked_test(name, f"{where}: {test}", default_timeout))
            else:
                hook_set.tests.append(test)
            continue
        if (kind, name) in seen:
            refused.append(f"{where}: the hook set has two objects of this kind and name")
            continue
        seen.add((kind, name))
        refusal = _refusal(doc, release, roles=roles, accounts=accounts)
        if refusal:
            refused.append(f"{where}: {refusal}")
            continue
        policies = parse_delete_policies(_strings(_mapping(doc.get("metadata")).get("annotations")))
        body = _resource_body(doc, release)
        hook_set.resources.append(
            HookResource(kind=kind, api_version=str(doc["apiVersion"]), name=name, weight=weight,
                         delete_policies=policies, body=body)
        )  # fmt: skip
    hook_set.resources.sort(key=lambda r: r.kind == "RoleBinding")  # stable: every Role before any binding
    hook_set.tests += hook_set_blocked
    hook_set.refused = refused
    hook_set.service_accounts = frozenset(r.name for r in hook_set.resources if r.kind == "ServiceAccount")
    if refused:
        blocked = f"a test hook of this release was refused: {refused[0]}"
        hook_set.tests = [
            t if t.blocked else t.model_copy(update={"blocked": blocked}) for t in hook_set.tests
        ]
    return hook_set


def _blocked_test(name: str, why: str, default_timeout: int) -> PlannedTest:
    """A test hook that was refused: planned so that it ends Error/HookRefused, never created."""
    return PlannedTest(
        name=sanitize_test_name(name or "refused"), source="hook", timeout_seconds=default_timeout,
        pod_spec={}, blocked=why,
    )  # fmt: skip


def _refusal(
    doc: Mapping[str, Any],
    release: Release,
    *,
    roles: Set[str] = frozenset(),
    accounts: Set[str] = frozenset(),
) -> str | None:
    return refuse_content(str(doc["kind"]), doc, namespace=release.namespace, roles=roles, accounts=accounts)


def _accepted_names(accepted: Ordered, release: Release, kind: str) -> set[str]:
    """Names of the hook set's objects of `kind` whose content is not refused (Roles, ServiceAccounts)."""
    return {str(d["metadata"]["name"]) for _, d in accepted if d["kind"] == kind and not _refusal(d, release)}


def build_resource_manifest(run: Run, resource: HookResource) -> dict[str, Any]:
    """The object to create for one supporting hook resource: our run label and an ownerReference to the
    E2ERun (not its controller), so it is garbage-collected with the run. The input is not changed."""
    body = copy.deepcopy(resource.body)
    meta = body["metadata"]
    meta["namespace"] = run.namespace
    meta["labels"][names.RUN_LABEL] = label_value(run.name)
    meta["ownerReferences"] = [build_owner_reference(run, controller=False)]
    return body


def decide_hook_cleanup(resources: Sequence[HookResource], run_phase: RunPhase) -> list[tuple[str, str]]:
    """(kind, name) of the supporting objects to delete once the run has ended and its results are saved,
    in reverse creation order (as Helm deletes them).

    Helm v3.19 `execHook` deletes a hook by `hook-succeeded` once it succeeded — after all hooks passed,
    and also (`deleteHooksByPolicy(executingHooks[0:i], HookSucceeded)`) when a later hook failed. A
    supporting object succeeds as soon as it is created (WatchUntilReady waits only for Pods and Jobs),
    so `hook-succeeded` objects go whatever the outcome; `hook-failed` applies only to the hook that
    failed, which a created ConfigMap or Role never is, so those stay until the E2ERun is deleted.
    """
    if not run_phase.is_final:
        return []
    return [(r.kind, r.name) for r in reversed(resources) if names.HOOK_SUCCEEDED in r.delete_policies]
