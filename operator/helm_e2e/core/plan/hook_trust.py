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
- Role rules beyond the read-only allowlist (docs/security.md, "Hook RBAC allowlist"): only the verbs get,
  list and watch, only on the kinds in READABLE (a test looks at what the release made, never changes it);
  no `*`, no nonResourceURLs. The one exception real charts need: `use` of a named PodSecurityPolicy
  (Grafana's test Role; the API is gone since Kubernetes 1.25, so the grant is inert);
- RoleBinding whose roleRef is not a Role (kind Role, group rbac.authorization.k8s.io) of the same hook set,
  or with a subject that is not one of the hook set's own ServiceAccounts (not `default`, not any other
  account of the namespace).

When they are created (the executor, in the order `hooks.build_hook_set` decided: every Role before any
RoleBinding), a RoleBinding is created only if its Role was created by this hook set in the same pass,
with the uid the API returned then (`refuse_to_bind`): a Role of that name that someone else made is never
bound. A name already taken refuses the whole set and what was created of it is deleted again.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

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
READ_VERBS = frozenset({"get", "list", "watch"})
# what a hook Role may let a test read, by API group: the workloads a release makes, their pods, logs and
# events, their networking and configuration. Never secrets, RBAC, tokens, subresources that act on a pod
# (exec, attach, portforward, proxy, eviction) or scale, nor anything outside these groups.
READABLE: Mapping[str, frozenset[str]] = {
    "": frozenset(
        {"pods", "pods/log", "pods/status", "services", "services/status", "endpoints", "configmaps",
         "events", "serviceaccounts", "persistentvolumeclaims", "persistentvolumeclaims/status",
         "replicationcontrollers", "replicationcontrollers/status", "limitranges", "resourcequotas",
         "resourcequotas/status"}
    ),
    "apps": frozenset(
        {"deployments", "deployments/status", "replicasets", "replicasets/status", "statefulsets",
         "statefulsets/status", "daemonsets", "daemonsets/status", "controllerrevisions"}
    ),
    "batch": frozenset({"jobs", "jobs/status", "cronjobs", "cronjobs/status"}),
    "autoscaling": frozenset({"horizontalpodautoscalers", "horizontalpodautoscalers/status"}),
    "policy": frozenset({"poddisruptionbudgets", "poddisruptionbudgets/status"}),
    "discovery.k8s.io": frozenset({"endpointslices"}),
    "networking.k8s.io": frozenset({"ingresses", "ingresses/status", "networkpolicies"}),
    "events.k8s.io": frozenset({"events"}),
    "coordination.k8s.io": frozenset({"leases"}),
}  # fmt: skip
# Grafana's test Role (charts/grafana/templates/tests/test-role.yaml): `use` of its own PodSecurityPolicy
PSP_GROUPS = frozenset({"policy", "extensions"})


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


def _inert_psp_use(
    rule: Mapping[str, Any], groups: list[str], resources: list[str], verbs: list[str]
) -> bool:
    """`use` of named PodSecurityPolicies: what Grafana's test Role grants; PSP is gone since 1.25."""
    named = bool(_strings(rule.get("resourceNames")))
    return named and set(groups) <= PSP_GROUPS and resources == ["podsecuritypolicies"] and verbs == ["use"]


def _refuse_rule(rule: Any) -> str | None:
    if not isinstance(rule, Mapping):
        return "a rule is not an object"
    groups, resources, verbs = (_strings(rule.get(k)) for k in ("apiGroups", "resources", "verbs"))
    if rule.get("nonResourceURLs"):
        return "a rule grants nonResourceURLs"
    if any("*" in x for x in (*groups, *resources, *verbs)):
        return "a rule uses the wildcard *"
    if _inert_psp_use(rule, groups, resources, verbs):
        return None
    if extra := sorted(set(verbs) - READ_VERBS):
        return f"a rule grants the verb {extra[0]} (hook Roles may only get, list and watch)"
    if resources and not groups:
        return "a rule names resources but no apiGroups"
    for group in groups:
        if outside := sorted(set(resources) - READABLE.get(group, frozenset())):
            what = f"{group}/{outside[0]}" if group else outside[0]
            return f"a rule grants {what}, which is not on the read-only allowlist"
    return None


def _refuse_binding(
    body: Mapping[str, Any], *, namespace: str, roles: Collection[str], accounts: Collection[str]
) -> str | None:
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
        if subject.get("name") not in accounts:
            return "a subject is not a ServiceAccount of the same hook set"
    return None


def refuse_to_bind(body: Mapping[str, Any], *, created_roles: Mapping[str, str]) -> str | None:
    """Why a RoleBinding is not created now (None: create it; not a RoleBinding: None). `created_roles`:
    Role name → uid, the Roles this hook set created (or this run made before) in this pass. A Role of that
    name that helm-e2e did not create for this run is never bound, whoever made it and whenever."""
    if body.get("kind") != "RoleBinding":
        return None
    ref = body.get("roleRef")
    role = str(ref.get("name") or "") if isinstance(ref, Mapping) else ""
    if created_roles.get(role):
        return None
    name = str((body.get("metadata") or {}).get("name") or "")
    return f"RoleBinding {name}: Role {role} was not created by this hook set, so it is not bound"


def _spec(body: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = body.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def refuse_content(
    kind: str,
    body: Mapping[str, Any],
    *,
    namespace: str,
    roles: Collection[str],
    accounts: Collection[str],
) -> str | None:
    """Why a hook object of a created kind is refused for its content (None: fine). `roles`, `accounts`:
    the names of the hook set's accepted Roles and ServiceAccounts."""
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
        return _refuse_binding(body, namespace=namespace, roles=roles, accounts=accounts)
    return None
