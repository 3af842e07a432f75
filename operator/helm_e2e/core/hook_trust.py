"""What helm-e2e creates for a chart's test hooks, and what it refuses (pure trust rules).

Threat model: whoever can write a Helm release Secret in a watched namespace writes the hook manifests, and
the operator creates hook objects with *its own* rights. So nothing created may give a test more than that
writer could get alone, nor hand the operator's rights away. Each check returns a one-line reason (kind,
name, rule; never a value) or None.

Created kinds (namespaced, `namespace` forced to the release's): ServiceAccount, ConfigMap, Secret,
Service, PersistentVolumeClaim, Role, RoleBinding. Everything else (cluster-scoped kinds such as
ClusterRole/ClusterRoleBinding, custom resources, workloads other than the test Pods and Jobs) is refused.

Refused inside those kinds:
- apiVersion other than the kind's own (`v1`, `rbac.authorization.k8s.io/v1`): not the object it claims;
- Secret of type `kubernetes.io/service-account-token`: the token controller would fill it with a token
  of any ServiceAccount it names (the operator's included);
- Service with `externalIPs` (CVE-2020-8554, traffic interception) or of type NodePort/LoadBalancer
  (opens the cluster to the outside);
- PersistentVolumeClaim with `dataSource`/`dataSourceRef` (clones another claim's data) or `volumeName`
  (claims a pre-provisioned volume meant for someone else);
- Role rules that hand rights away:
  * `*` anywhere in apiGroups, resources or verbs (also `pods/*`), and `nonResourceURLs`;
  * resources `secrets` (Helm release Secrets hold every value), `pods/exec`, `pods/attach`,
    `pods/portforward`, `pods/proxy`, `pods/ephemeralcontainers`, `services/proxy`,
    `serviceaccounts/token` (mints tokens), `roles`, `rolebindings` (re-grants), and the API group
    `helm-e2e.dev` (a test could forge its own result);
  * write verbs (create, update, patch) on pods and on the workloads that create pods (deployments,
    replicasets, statefulsets, daemonsets, jobs, cronjobs, replicationcontrollers): a pod may run under any
    ServiceAccount of the namespace, which would bypass the test pod policy;
  * write verbs on services, endpoints, endpointslices, ingresses, networkpolicies and
    persistentvolumeclaims: the test could then make what we refuse above (externalIPs, cloned volumes) or
    redirect the namespace's traffic;
  * verbs `escalate`, `bind`, `impersonate`;
- RoleBinding whose roleRef is not a Role (kind Role, group rbac.authorization.k8s.io) of the same hook set,
  or with a subject that is not a ServiceAccount of the release's namespace.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from . import names

RBAC_GROUP = "rbac.authorization.k8s.io"
API_VERSIONS: Mapping[str, str] = {
    "ServiceAccount": "v1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "PersistentVolumeClaim": "v1",
    "Role": f"{RBAC_GROUP}/v1",
    "RoleBinding": f"{RBAC_GROUP}/v1",
}
TEST_KINDS: Mapping[str, str] = {"Pod": "v1", "Job": "batch/v1"}
# the top-level fields each created kind keeps (metadata is rebuilt; status and the rest are dropped)
KEPT_FIELDS: Mapping[str, tuple[str, ...]] = {
    "ServiceAccount": ("automountServiceAccountToken", "imagePullSecrets", "secrets"),
    "ConfigMap": ("data", "binaryData", "immutable"),
    "Secret": ("data", "stringData", "type", "immutable"),
    "Service": ("spec",),
    "PersistentVolumeClaim": ("spec",),
    "Role": ("rules",),
    "RoleBinding": ("roleRef", "subjects"),
}
CLUSTER_SCOPED = frozenset(
    {"ClusterRole", "ClusterRoleBinding", "Namespace", "PersistentVolume", "StorageClass", "PriorityClass",
     "CustomResourceDefinition", "APIService", "IngressClass", "PodSecurityPolicy",
     "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
)  # fmt: skip
DENIED_RESOURCES = frozenset(
    {"secrets", "pods/exec", "pods/attach", "pods/portforward", "pods/proxy", "pods/ephemeralcontainers",
     "services/proxy", "serviceaccounts/token", "roles", "rolebindings"}
)  # fmt: skip
POD_MAKERS = frozenset(
    {"pods", "deployments", "replicasets", "statefulsets", "daemonsets", "jobs", "cronjobs",
     "replicationcontrollers"}
)  # fmt: skip
TRAFFIC_AND_STORAGE = frozenset(
    {"services", "endpoints", "endpointslices", "ingresses", "networkpolicies", "persistentvolumeclaims"}
)
WRITE_VERBS = frozenset({"create", "update", "patch"})
DENIED_VERBS = frozenset({"escalate", "bind", "impersonate"})
DENIED_GROUPS = frozenset({names.GROUP})


def _strings(node: Any) -> list[str]:
    return [str(x) for x in node] if isinstance(node, list) else []


def refuse_kind(kind: str, api_version: str) -> str | None:
    """Why a hook of this kind is not created (None: created, or a test Pod/Job)."""
    if kind in TEST_KINDS:
        return None if api_version == TEST_KINDS[kind] else f"apiVersion is not {TEST_KINDS[kind]}"
    if kind in API_VERSIONS:
        return None if api_version == API_VERSIONS[kind] else f"apiVersion is not {API_VERSIONS[kind]}"
    if kind in CLUSTER_SCOPED:
        return "cluster-scoped kinds are not created"
    return "kind is not created (only ServiceAccount, ConfigMap, Secret, Service, PVC, Role, RoleBinding)"


def _refuse_rule(rule: Any) -> str | None:
    if not isinstance(rule, Mapping):
        return "a rule is not an object"
    groups, resources, verbs = (_strings(rule.get(k)) for k in ("apiGroups", "resources", "verbs"))
    if rule.get("nonResourceURLs"):
        return "a rule grants nonResourceURLs"
    if any("*" in x for x in (*groups, *resources, *verbs)):
        return "a rule uses the wildcard *"
    if DENIED_GROUPS.intersection(groups):
        return "a rule grants access to helm-e2e's own API group"
    denied = sorted(DENIED_RESOURCES.intersection(resources))
    if denied:
        return f"a rule grants {denied[0]}"
    bad_verbs = sorted(DENIED_VERBS.intersection(verbs))
    if bad_verbs:
        return f"a rule grants the verb {bad_verbs[0]}"
    makers = sorted(POD_MAKERS.intersection(resources))
    if makers and WRITE_VERBS.intersection(verbs):
        return f"a rule lets the test create or change {makers[0]} (any ServiceAccount)"
    guarded = sorted(TRAFFIC_AND_STORAGE.intersection(resources))
    if guarded and WRITE_VERBS.intersection(verbs):
        return f"a rule lets the test create or change {guarded[0]}"
    return None


def _refuse_binding(body: Mapping[str, Any], *, namespace: str, roles: Collection[str]) -> str | None:
    ref = body.get("roleRef")
    if not isinstance(ref, Mapping) or ref.get("kind") != "Role" or ref.get("apiGroup") != RBAC_GROUP:
        return "roleRef is not a Role"
    if ref.get("name") not in roles:
        return "roleRef names no Role of the same hook set"
    subjects = body.get("subjects") or []
    for subject in subjects if isinstance(subjects, list) else [None]:
        if not isinstance(subject, Mapping) or subject.get("kind") != "ServiceAccount":
            return "a subject is not a ServiceAccount"
        if subject.get("namespace") not in (None, "", namespace):
            return "a subject is a ServiceAccount of another namespace"
        if subject.get("apiGroup") not in (None, ""):
            return "a subject has an apiGroup (ServiceAccounts have none)"
    return None


def _spec(body: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = body.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def refuse_content(
    kind: str, body: Mapping[str, Any], *, namespace: str, roles: Collection[str]
) -> str | None:
    """Why a hook object of a created kind is refused for its content (None: fine). `roles`: the names
    of the hook set's accepted Roles."""
    if kind == "Secret" and body.get("type") == "kubernetes.io/service-account-token":
        return "Secrets of type kubernetes.io/service-account-token are not created"
    if kind == "Service":
        spec = _spec(body)
        if spec.get("externalIPs"):
            return "Services with externalIPs are not created"
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            return "Services of type NodePort or LoadBalancer are not created"
    if kind == "PersistentVolumeClaim":
        spec = _spec(body)
        for key in ("dataSource", "dataSourceRef", "volumeName"):
            if spec.get(key):
                return f"claims with spec.{key} are not created"
    if kind == "Role":
        rules = body.get("rules") or []
        for rule in rules if isinstance(rules, list) else [None]:
            why = _refuse_rule(rule)
            if why:
                return why
    if kind == "RoleBinding":
        return _refuse_binding(body, namespace=namespace, roles=roles)
    return None
