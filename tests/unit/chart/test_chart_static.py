"""The operator chart stays in step with the Settings it configures.

Static checks read the chart's files; the rendering checks run `helm template` (no cluster) when a helm
binary is on PATH or in ~/.cache/helm-e2e/bin/current (built by `make binaries`).
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from typing import Any

import pytest
import yaml
from chart_render import (
    mebibytes,
    needs_helm,
    operator_container,
    operator_env,
    render_chart,
    role_rules,
)
from repo_paths import CHART, ROOT

from helm_e2e.clients import sandbox
from helm_e2e.settings import Settings

DEPLOYMENT = (CHART / "templates" / "deployment.yaml").read_text()
# `- {name: HELM_E2E_X, value: {{ [join "," ].Values.a.b | quote }}}`
ENV_FROM_VALUE = re.compile(r'name: (HELM_E2E_[A-Z_]+), value: \{\{ (?:join "," )?\.Values\.([\w.]+)')
# the chart's deliberate departures from the operator's defaults (documented in values.yaml)
CHART_DEFAULTS = {
    "HELM_E2E_SMTP_PORT": 587,
    "HELM_E2E_SMTP_TLS": "starttls",
    "HELM_E2E_LEADER_ELECTION": True,
}
# set by the chart from something other than a plain value
INDIRECT = {
    "HELM_E2E_SMTP_PASSWORD",
    "HELM_E2E_SMTP_CA_FILE",
    "HELM_E2E_LEADER_ELECTION_NAMESPACE",  # the pod's namespace (downward API)
    "HELM_E2E_WEBHOOKS_NAMESPACE",  # the pod's namespace (downward API)
    "HELM_E2E_LEADER_ELECTION_LEASE_NAME",  # named after the release
    "HELM_E2E_ARTIFACTS_URL",  # the chart's Service
}


def _values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


def _lookup(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for key in dotted.split("."):
        assert isinstance(node, dict)
        assert key in node, f"values.yaml has no {dotted}"
        node = node[key]
    return node


def _env_var(name: str) -> str:
    return f"HELM_E2E_{name.upper()}"


def _as_env(value: Any) -> str:
    """What `| quote` / `join ","` make of a values.yaml default."""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def test_chart_metadata_matches_the_package() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert (chart["apiVersion"], chart["name"], chart["version"]) == ("v2", "helm-e2e", "0.1.0")
    assert chart["appVersion"] == project["version"]


def test_every_env_var_the_chart_sets_is_a_setting() -> None:
    names = set(re.findall(r"HELM_E2E_[A-Z_]+", DEPLOYMENT))
    assert names
    assert names <= {_env_var(field) for field in Settings.model_fields}


def test_every_setting_can_be_set_through_the_chart() -> None:
    names = set(re.findall(r"HELM_E2E_[A-Z_]+", DEPLOYMENT))
    assert {_env_var(field) for field in Settings.model_fields} <= names


def test_every_env_var_reads_an_existing_value() -> None:
    values = _values()
    pairs = ENV_FROM_VALUE.findall(DEPLOYMENT)
    set_names = set(re.findall(r"HELM_E2E_[A-Z_]+", DEPLOYMENT))
    assert {name for name, _ in pairs} == set_names - INDIRECT
    for _, path in pairs:
        _lookup(values, path)


def test_chart_defaults_equal_the_operator_defaults_except_documented_ones() -> None:
    values = _values()
    defaults = Settings.model_construct()
    for name, path in ENV_FROM_VALUE.findall(DEPLOYMENT):
        value = _lookup(values, path)
        if name in CHART_DEFAULTS:
            assert value == CHART_DEFAULTS[name], name
            continue
        field = name.removeprefix("HELM_E2E_").lower()
        parsed = getattr(Settings.model_validate({field: _as_env(value)}), field)
        assert parsed == getattr(defaults, field), name


def test_chart_defaults_are_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    values = _values()
    for name, path in ENV_FROM_VALUE.findall(DEPLOYMENT):
        monkeypatch.setenv(name, _as_env(_lookup(values, path)))
    monkeypatch.setenv("HELM_E2E_LEADER_ELECTION_NAMESPACE", "ops")  # the pod's namespace
    settings = Settings()
    assert settings.watch_namespaces == []
    assert settings.metrics_port == values["metrics"]["port"]


def test_values_never_hold_the_smtp_password() -> None:
    smtp = _values()["smtp"]
    assert "password" not in smtp
    assert {"existingSecret", "passwordKey"} <= set(smtp)


def _commented(lines: list[str], i: int) -> bool:
    """Line i, or the nearest enclosing key, has a comment right above it."""
    indent = len(lines[i]) - len(lines[i].lstrip())
    while i > 0:
        if lines[i - 1].strip().startswith("#"):
            return True
        parents = [
            j
            for j in range(i - 1, -1, -1)
            if lines[j].strip() and len(lines[j]) - len(lines[j].lstrip()) < indent
        ]
        if not parents:
            return False
        i = parents[0]
        indent = len(lines[i]) - len(lines[i].lstrip())
    return False


def test_every_value_is_commented() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\s*[A-Za-z]\w*:\s*[^\s#]", line):  # a leaf (parents may rely on their children)
            assert _commented(lines, i), f"values.yaml:{i + 1} {line.strip()} has no comment"


# --- rendering ------------------------------------------------------------------------------------------


def _kinds(docs: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return sorted((d["kind"], d["metadata"].get("namespace")) for d in docs)


OPERATOR_RULES = {  # tests/unit/chart/test_rbac.py checks these against what the code uses
    ("", "secrets"): {"get", "list", "watch", "create", "delete", "patch"},  # patch: SSA of Helm 4 hooks
    ("helm-e2e.dev", "e2eruns"): {"get", "list", "watch", "create", "delete"},
    ("helm-e2e.dev", "e2eruns/status"): {"patch"},
    ("helm-e2e.dev", "e2eruns/finalizers"): {"update"},
    ("helm-e2e.dev", "e2esuites"): {"list", "watch"},
    ("helm-e2e.dev", "e2esuites/status"): {"patch"},
    ("", "pods"): {"get", "list", "watch", "create", "delete"},
    ("", "pods/log"): {"get"},
    ("", "events"): {"create", "list"},
    ("", "serviceaccounts"): {"list", "watch", "get", "create", "delete", "patch"},
    ("", "configmaps"): {"get", "create", "delete", "patch"},
    ("", "services"): {"get", "create", "delete", "patch"},
    ("", "persistentvolumeclaims"): {"get", "create", "delete", "patch"},
    ("rbac.authorization.k8s.io", "roles"): {"get", "create", "delete", "patch"},
    ("rbac.authorization.k8s.io", "rolebindings"): {"get", "create", "delete", "patch"},
    ("batch", "jobs"): {"get", "list", "create", "delete"},
    ("apps", "deployments"): {"get"},
    ("apps", "statefulsets"): {"get"},
    ("apps", "daemonsets"): {"get"},
    ("helm.toolkit.fluxcd.io", "helmreleases"): {"get"},  # a Flux-labelled release's HelmRelease
    ("argoproj.io", "applications"): {"get", "list", "watch"},  # Argo CD syncs (docs/gitops.md)
}
KOPF_RULES = {
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
}


@needs_helm
def test_default_install_watches_the_whole_cluster_with_cluster_roles() -> None:
    docs = render_chart()
    assert _kinds(docs) == [
        ("ClusterRole", None),
        ("ClusterRole", None),
        ("ClusterRoleBinding", None),
        ("ClusterRoleBinding", None),
        ("Deployment", "ops"),
        ("PersistentVolumeClaim", "ops"),  # the artifacts
        ("PodDisruptionBudget", "ops"),
        ("Role", "ops"),  # fetching artifacts through the service proxy (bound by the admin)
        ("Role", "ops"),  # the leader-election Lease
        ("RoleBinding", "ops"),
        ("Service", "ops"),  # artifacts
        ("Service", "ops"),  # metrics
        ("ServiceAccount", "ops"),
        ("ValidatingAdmissionPolicy", None),  # E2ERuns are the operator's own record
        ("ValidatingAdmissionPolicyBinding", None),
    ]
    roles = {d["metadata"]["name"]: role_rules(d) for d in docs if d["kind"] == "ClusterRole"}
    assert roles == {"ops-helm-e2e": OPERATOR_RULES, "ops-helm-e2e-kopf": KOPF_RULES}
    assert operator_env(docs)["HELM_E2E_WATCH_NAMESPACES"] == ""


@needs_helm
def test_watch_namespaces_switch_rbac_to_roles_in_exactly_those_namespaces() -> None:
    docs = render_chart("watchNamespaces={a,b}", "leaderElection.enabled=false", "replicas=1")
    assert _kinds(docs) == [
        ("Deployment", "ops"),
        ("PersistentVolumeClaim", "ops"),
        ("Role", "a"),
        ("Role", "b"),
        ("Role", "ops"),  # the artifacts reader
        ("RoleBinding", "a"),
        ("RoleBinding", "b"),
        ("Service", "ops"),
        ("Service", "ops"),
        ("ServiceAccount", "ops"),
        ("ValidatingAdmissionPolicy", None),
        ("ValidatingAdmissionPolicyBinding", None),
    ]
    roles = [d for d in docs if d["kind"] == "Role" and d["metadata"]["namespace"] != "ops"]
    assert all(role_rules(d) == OPERATOR_RULES for d in roles)
    subjects = [d["subjects"] for d in docs if d["kind"] == "RoleBinding"]
    assert subjects == [[{"kind": "ServiceAccount", "name": "ops-helm-e2e", "namespace": "ops"}]] * 2
    assert operator_env(docs)["HELM_E2E_WATCH_NAMESPACES"] == "a,b"


@needs_helm
def test_operator_runs_locked_down_with_kopf_probes() -> None:
    docs = render_chart()
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = operator_container(docs)
    assert container["image"] == "ghcr.io/helm-e2e/helm-e2e:0.1.0"
    assert container["args"] == ["run", "--liveness=http://0.0.0.0:8080/healthz"]
    sc = container["securityContext"]
    assert (sc["allowPrivilegeEscalation"], sc["readOnlyRootFilesystem"]) == (False, True)
    assert sc["capabilities"] == {"drop": ["ALL"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9090, "artifacts": 8081}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    # ready only while the artifact store can be written (the artifacts server's /readyz)
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "artifacts"}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["timeoutSeconds"] >= 5  # not the default 1 s of a busy event loop
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    services = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "Service"}
    assert services["ops-helm-e2e-metrics"]["type"] == "ClusterIP"
    assert services["ops-helm-e2e-metrics"]["ports"][0]["targetPort"] == "metrics"
    assert services["ops-helm-e2e"]["ports"] == [
        {"name": "artifacts", "port": 8081, "targetPort": "artifacts", "protocol": "TCP"}
    ]


@needs_helm
def test_the_artifacts_claim_is_writable_by_the_operator_on_a_root_owned_fresh_volume() -> None:
    (deployment,) = [d for d in render_chart() if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"] == 65532
    # a large store is chowned once, not on every restart of the operator
    assert pod["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    assert {"name": "artifacts", "persistentVolumeClaim": {"claimName": "ops-helm-e2e-artifacts"}} in pod[
        "volumes"
    ]


def test_memory_limit_leaves_the_sandbox_workers_their_headroom() -> None:
    """The container held ~190 MiB at rest on the real node and was OOM-killed at start under a 256Mi
    limit: the limit must cover the operator plus every sandbox worker's own limit, so that a hostile
    release fails its decode (SandboxMemory) instead of killing the operator."""
    values = _values()
    limits, requests = values["resources"]["limits"], values["resources"]["requests"]
    headroom = sandbox.WORKERS * int(values["config"]["sandboxMemoryMib"])
    assert mebibytes(limits["memory"]) >= 256 + headroom
    assert mebibytes(requests["memory"]) >= 192  # what one replica holds at rest


@needs_helm
def test_smtp_password_comes_from_an_existing_secret_only_when_set() -> None:
    assert "HELM_E2E_SMTP_PASSWORD" not in operator_env(render_chart())
    env = operator_env(render_chart("smtp.existingSecret=mail", "smtp.passwordKey=pw"))
    assert env["HELM_E2E_SMTP_PASSWORD"] == {"secretKeyRef": {"name": "mail", "key": "pw"}}


@needs_helm
def test_rendered_env_builds_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    env = operator_env(
        render_chart("watchNamespaces={a,b}", "smtp.to={x@example.com,y@example.com}", "smtp.caConfigMap=ca")
    )
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    resolved = {"POD_NAMESPACE": "ops"}  # what the kubelet puts there, and then expands $(POD_NAMESPACE) with
    for name, value in env.items():
        if isinstance(value, str):
            value = re.sub(r"\$\((\w+)\)", lambda m: resolved[m.group(1)], value)
            monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.leader_election is True
    assert (settings.leader_election_namespace, settings.leader_election_lease_name) == (
        "ops",
        "ops-helm-e2e-leader",
    )
    assert settings.watch_namespaces == ["a", "b"]
    assert settings.mail_to == ["x@example.com", "y@example.com"]
    assert settings.smtp_ca_file == "/etc/helm-e2e/smtp-ca/ca.crt"


LEASE_RULES = {("coordination.k8s.io", "leases"): {"get", "create", "update"}}


@needs_helm
def test_default_install_runs_two_replicas_one_active_through_a_lease() -> None:
    docs = render_chart()
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    env = operator_env(docs)
    assert env["HELM_E2E_LEADER_ELECTION"] == "true"
    assert env["HELM_E2E_LEADER_ELECTION_NAMESPACE"] == "$(POD_NAMESPACE)"
    assert env["HELM_E2E_LEADER_ELECTION_LEASE_NAME"] == "ops-helm-e2e-leader"

    (budget,) = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    selector = deployment["spec"]["selector"]
    assert budget["spec"] == {"minAvailable": 1, "selector": selector}

    # the default artifacts volume is ReadWriteOnce: both replicas on its node
    together = deployment["spec"]["template"]["spec"]["affinity"]["podAffinity"]
    (required,) = together["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required == {"topologyKey": "kubernetes.io/hostname", "labelSelector": selector}

    (role,) = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-election")]
    assert (role["metadata"]["name"], role["metadata"]["namespace"]) == (
        "ops-helm-e2e-leader-election",
        "ops",
    )
    assert role_rules(role) == LEASE_RULES
    named = [r for r in role["rules"] if r.get("resourceNames")]
    assert named == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["ops-helm-e2e-leader"],
            "verbs": ["get", "update"],
        }
    ]
    (binding,) = [d for d in docs if d["kind"] == "RoleBinding"]
    assert binding["roleRef"]["name"] == "ops-helm-e2e-leader-election"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "ops-helm-e2e", "namespace": "ops"}]


@needs_helm
def test_without_leader_election_one_replica_is_recreated_with_no_lease_rights() -> None:
    docs = render_chart("leaderElection.enabled=false", "replicas=1")
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "affinity" not in deployment["spec"]["template"]["spec"]
    assert not [d for d in docs if d["kind"] in ("PodDisruptionBudget", "RoleBinding")]
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Role"] == ["ops-helm-e2e-artifacts-reader"]
    assert operator_env(docs)["HELM_E2E_LEADER_ELECTION"] == "false"


@needs_helm
@pytest.mark.parametrize(
    "store",
    [
        "artifacts.store=s3://bucket/p",
        "artifacts.enabled=false",
        "artifacts.persistence.accessModes={ReadWriteMany}",
    ],
)
def test_replicas_spread_over_nodes_when_they_do_not_share_a_readwriteonce_volume(store: str) -> None:
    docs = render_chart(store)
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    (preferred,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred["podAffinityTerm"] == {
        "topologyKey": "kubernetes.io/hostname",
        "labelSelector": deployment["spec"]["selector"],
    }
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in anti  # one node must still do
    has_claim = any(d["kind"] == "PersistentVolumeClaim" for d in docs)
    assert has_claim == ("ReadWriteMany" in store)


@needs_helm
def test_artifacts_go_to_the_claim_by_default_and_to_s3_with_credentials_from_a_secret() -> None:
    env = operator_env(render_chart())
    assert env["HELM_E2E_ARTIFACTS_STORE"] == "/var/lib/helm-e2e/artifacts"
    assert env["HELM_E2E_ARTIFACTS_URL"] == "http://ops-helm-e2e.ops.svc:8081"
    assert env["HELM_E2E_COLLECTOR_IMAGE"] == "ghcr.io/helm-e2e/helm-e2e:0.1.0"
    s3 = operator_env(
        render_chart("artifacts.store=s3://bucket/p?region=eu", "artifacts.s3CredentialsSecret=s3")
    )
    assert s3["HELM_E2E_ARTIFACTS_STORE"] == "s3://bucket/p?region=eu"
    assert s3["AWS_ACCESS_KEY_ID"] == {"secretKeyRef": {"name": "s3", "key": "AWS_ACCESS_KEY_ID"}}
    off = operator_env(render_chart("artifacts.enabled=false"))
    assert "HELM_E2E_ARTIFACTS_STORE" not in off
    assert "AWS_ACCESS_KEY_ID" not in off


@needs_helm
def test_two_replicas_without_leader_election_refuse_to_render() -> None:
    with pytest.raises(subprocess.CalledProcessError) as failed:
        render_chart("leaderElection.enabled=false")
    assert "replicas > 1 needs leaderElection.enabled" in failed.value.stderr


@needs_helm
def test_the_budget_can_be_turned_off_and_an_explicit_affinity_wins() -> None:
    docs = render_chart("podDisruptionBudget.enabled=false", "affinity.nodeAffinity.x=y")
    assert not [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["affinity"] == {"nodeAffinity": {"x": "y"}}


@needs_helm
def test_only_the_operators_account_creates_e2eruns_or_writes_their_status_and_nobody_changes_a_spec() -> (
    None
):
    docs = render_chart("watchNamespaces={a,b}")
    (policy,) = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicy"]
    (binding,) = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert policy["spec"]["failurePolicy"] == "Fail"
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert (rule["apiGroups"], rule["resources"]) == (["helm-e2e.dev"], ["e2eruns", "e2eruns/status"])
    assert policy["spec"]["variables"] == [
        {
            "name": "isOperator",
            "expression": 'request.userInfo.username == "system:serviceaccount:ops:ops-helm-e2e"',
        }
    ]
    assert len(policy["spec"]["validations"]) == 3
    assert binding["spec"]["policyName"] == policy["metadata"]["name"] == "ops-helm-e2e-ops-e2eruns"
    assert binding["spec"]["validationActions"] == ["Deny"]
    (scope,) = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert scope == {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["a", "b"]}
    off = render_chart("admissionPolicy.enabled=false")
    assert not [d for d in off if d["kind"].startswith("ValidatingAdmissionPolicy")]
