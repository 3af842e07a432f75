"""The chart grants exactly what the code uses: no missing rule, no extra one.

What the code needs is derived, not listed by hand:
- the Kube adapter's API calls: every `self.<api>.<method>` in operator/helm_e2e outside core/, where
  <method> follows the kubernetes client's naming (`create_namespaced_pod`, `read_namespaced_pod_log`,
  `patch_namespaced_custom_object_status`, ...) and custom objects take their plural from the call's
  arguments (a module constant such as RUNS); and every request sent by path,
  `self._send[_checked]("<HTTP method>", <Resource constant>, namespace[, name[, subresource]])`
  (clients/kube_rest.py), whose verb follows from the method and whether it names an object;
- kopf's watches: every `kopf.on.event(*RESOURCE)` in runtime/kopf_wiring.py (list + watch), and, cluster-wide,
  kopf's own scanning of CRDs (kopf._core.reactor.observation; namespaces are only scanned when kopf
  serves namespace patterns, which helm-e2e never does);
- ownerReferences with blockOwnerDeletion on test pods: `update` on the owner's `finalizers`.
To support a new client API or method shape, extend API_GROUPS or VERBS below.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import yaml
from chart_render import helm_binary, needs_helm, render_chart, role_rules
from repo_paths import CHART, ROOT

from helm_e2e.core.model import names

PACKAGE = ROOT / "operator" / "helm_e2e"
Rule = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)

API_GROUPS = {
    "core": "",
    "batch": "batch",
    "apps": "apps",
    "rbac": "rbac.authorization.k8s.io",
    "events": "events.k8s.io",
    "coordination": "coordination.k8s.io",  # leader election's Lease (runtime/leader.py)
    "custom": None,
}
VERBS = {  # client method prefix → RBAC verb (longest first)
    "delete_collection": "deletecollection",
    "create": "create",
    "read": "get",
    "get": "get",
    "list": "list",
    "patch": "patch",
    "replace": "update",
    "delete": "delete",
}
SUBRESOURCES = ("status", "log", "scale", "eviction", "binding", "exec", "attach", "ephemeralcontainers")
PLURALS = {"endpoints": "endpoints"}
HOOK_ADAPTER = "hook_objects"  # clients/hook_objects.py: a chart's test hook objects and Job tests
KOPF_CLUSTER_SCANNING = {("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")}


def _plural(snake: str) -> str:
    word = snake.replace("_", "")
    return PLURALS.get(word) or (word[:-1] + "ies" if word.endswith("y") else word + "s")


def _method_rule(method: str, group: str | None, custom_plural: str | None) -> Rule:
    """`read_namespaced_pod_log` → ('', 'pods/log', 'get'); custom objects take group and plural."""
    prefix = next(p for p in VERBS if method.startswith(p + "_"))
    rest = method.removeprefix(prefix + "_").removeprefix("namespaced_").removesuffix("_for_all_namespaces")
    whole = rest in ("role_binding", "cluster_role_binding")  # a resource, not roles/binding
    sub = "" if whole else next((s for s in SUBRESOURCES if rest.endswith("_" + s)), "")
    rest = rest.removesuffix("_" + sub) if sub else rest
    if rest in ("custom_object", "cluster_custom_object"):
        assert group is not None, method
        assert custom_plural, f"{method}: no plural among its arguments"
        resource = custom_plural
    else:
        resource = _plural(rest)
    return (group or "", f"{resource}/{sub}" if sub else resource, VERBS[prefix])


SENDS = ("_send", "_send_checked")  # clients/kube_calls.py: a request by path, its Resource a module constant
HTTP_VERBS = {"POST": "create", "PATCH": "patch", "PUT": "update"}


def _send_rule(module: Any, call: ast.Call) -> Rule | None:
    """`self._send("GET", PODS, ns, pod, "log")` → ('', 'pods/log', 'get'); None for a call that forwards
    its arguments (`*args`)."""
    if not call.args or not isinstance(call.args[0], ast.Constant):
        return None
    method, resource = call.args[0].value, _constant(module, call.args[1])
    assert resource is not None, f"{ast.unparse(call)}: its Resource is not a module constant"
    keywords = {k.arg: k.value for k in call.keywords}
    name = call.args[3] if len(call.args) > 3 else keywords.get("name")
    sub_node = call.args[4] if len(call.args) > 4 else keywords.get("sub")
    sub = sub_node.value if isinstance(sub_node, ast.Constant) else ""
    assert sub_node is None or sub, f"{ast.unparse(call)}: a subresource that is not a literal"
    by_name = {"GET": ("get", "list"), "DELETE": ("delete", "deletecollection")}
    verb = by_name[method][name is None] if method in by_name else HTTP_VERBS[method]
    return (resource.group, f"{resource.plural}/{sub}" if sub else resource.plural, verb)


def send_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr in SENDS
        and ast.unparse(n.func.value) == "self"
    ]


def _constant(module: Any, node: ast.expr) -> Any:
    """A module-level name (`RUNS`) or a dotted one (`names.RUNS`) as the module sees it."""
    if isinstance(node, ast.Name):
        return getattr(module, node.id, None)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return getattr(getattr(module, node.value.id, None), node.attr, None)
    return None


# What runs with the user's own credentials, not the operator's ServiceAccount: `helm-e2e` commands and the viewer.
USER_SIDE = ("cli/", "viewer/", "artifacts/client.py")


def effect_modules() -> list[Path]:
    """Every module the operator runs that may call the API: the whole package but the pure core and the user side."""
    paths = (p for p in PACKAGE.rglob("*.py") if p.name != "__main__.py")
    return sorted(p for p in paths if not p.relative_to(PACKAGE).as_posix().startswith(("core/", *USER_SIDE)))


def adapter_rules(*, hooks: bool | None = None) -> set[Rule]:
    """Every `self.<api>.<method>` the adapters reference, called or kept as a callable (a dispatch table);
    hooks=True: only those of the chart-hook adapter (HOOK_ADAPTER), False: only the others'."""
    rules: set[Rule] = set()
    for path in effect_modules():
        if hooks is not None and (path.stem == HOOK_ADAPTER) != hooks:
            continue
        relative = path.relative_to(PACKAGE).with_suffix("")
        module = importlib.import_module(".".join(("helm_e2e", *relative.parts)))
        tree = ast.parse(path.read_text())
        rules |= {r for call in send_calls(tree) if (r := _send_rule(module, call)) is not None}
        calls = {id(n.func): n for n in ast.walk(tree) if isinstance(n, ast.Call)}
        calls |= {id(a): n for n in ast.walk(tree) if isinstance(n, ast.Call) for a in n.args}
        for node in (n for n in ast.walk(tree) if isinstance(n, ast.Attribute)):
            api = node.value
            if not (isinstance(api, ast.Attribute) and isinstance(api.value, ast.Name)):
                continue
            if api.value.id != "self" or api.attr not in API_GROUPS:
                continue
            call = calls.get(id(node))
            args = [_constant(module, a) for a in call.args] if call else []
            group = API_GROUPS[api.attr]
            if api.attr == "custom":
                group = next(
                    (a for a in args if a in (names.GROUP, names.FLUX_GROUP, names.ARGOCD_GROUP)), None
                )
            plural = next(
                (
                    a
                    for a in args
                    if a in (names.RUNS, names.SUITES, names.FLUX_HELM_RELEASES, names.ARGOCD_APPLICATIONS)
                ),
                None,
            )
            rules.add(_method_rule(node.attr, group, plural))
    return rules


def hook_rules() -> set[Rule]:
    """What only chart test hooks need (their objects and Job tests): granted only with config.runChartHooks."""
    return adapter_rules(hooks=True) - adapter_rules(hooks=False)


def kopf_watch_rules() -> set[Rule]:
    module = importlib.import_module("helm_e2e.runtime.kopf_wiring")
    tree = ast.parse((PACKAGE / "runtime" / "kopf_wiring.py").read_text())
    rules: set[Rule] = set()
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        if ast.unparse(call.func) == "kopf.on.event":
            starred = [a.value for a in call.args if isinstance(a, ast.Starred)]
            group, _version, plural = _constant(module, starred[0])
            rules |= {(group, plural, "list"), (group, plural, "watch")}
    # the resources streamed beside kopf's handlers (runtime/lean_watch.py): list and watch them too
    unused = SimpleNamespace(controller=None, cache=None, evidence=None, work=None)
    for group, _version, plural in module.run_event_handlers(cast(Any, unused)):
        rules |= {(group, plural, "list"), (group, plural, "watch")}
    return rules


def owner_reference_rules() -> set[Rule]:
    source = "".join(p.read_text() for p in sorted((PACKAGE / "core").rglob("*.py")))
    if re.search(r'"blockOwnerDeletion": True', source):  # the owner is the E2ERun
        return {(names.GROUP, f"{names.RUNS}/finalizers", "update")}
    return set()


LEASES = "coordination.k8s.io"  # leader election: granted in the release namespace only, not where it watches
SHARD = {("", "namespaces", "list"), ("", "namespaces", "watch")}  # runtime/shard.py, only with a selector


def needed(*, cluster_wide: bool, hooks: bool = True) -> set[Rule]:
    rules = {r for r in adapter_rules() if r[0] != LEASES} | kopf_watch_rules() | owner_reference_rules()
    rules -= SHARD
    rules -= set() if hooks else hook_rules()
    return rules | KOPF_CLUSTER_SCANNING if cluster_wide else rules


def is_lease_role(doc: dict[str, Any]) -> bool:
    return str(doc["metadata"]["name"]).endswith("-leader-election")


def is_artifacts_reader(doc: dict[str, Any]) -> bool:
    """For the people who fetch artifacts (bound by the admin), never for the operator."""
    return str(doc["metadata"]["name"]).endswith("-artifacts-reader")


def is_webhooks_role(doc: dict[str, Any]) -> bool:
    return str(doc["metadata"]["name"]).endswith("-webhooks")


def granted(docs: list[dict[str, Any]], kind: str) -> set[Rule]:
    out: set[Rule] = set()
    for doc in (d for d in docs if d["kind"] == kind):
        for (group, resource), verbs in role_rules(doc).items():
            out |= {(group, resource, verb) for verb in verbs}
    return out


def test_requests_by_path_map_to_rbac_rules() -> None:
    import helm_e2e.clients.kube_rest as module

    def rule(source: str) -> Rule | None:
        call = ast.parse(source).body[0].value  # type: ignore[attr-defined]
        return _send_rule(module, call)

    assert rule('self._send("GET", PODS, ns, pod, "log", query=q)') == ("", "pods/log", "get")
    assert rule('self._send("GET", PODS, ns, query=q)') == ("", "pods", "list")
    assert rule('self._send("PATCH", RUNS, ns, name, "status")') == (names.GROUP, "e2eruns/status", "patch")
    assert rule('self._send_checked("DELETE", RUNS, ns, name=n, ok=x)') == (names.GROUP, "e2eruns", "delete")
    assert rule('self._send("POST", EVENTS, ns, body=b)') == ("", "events", "create")
    assert rule("self._send(*args, **kw)") is None
    found = {
        r
        for path in (PACKAGE / "clients").glob("kube_*.py")
        for call in send_calls(ast.parse(path.read_text()))
        if (r := _send_rule(importlib.import_module(f"helm_e2e.clients.{path.stem}"), call))
    }
    assert ("", "pods/log", "get") in found  # the adapter's requests by path are seen at all
    assert (names.GROUP, "e2eruns/status", "patch") in found


def test_method_names_map_to_rbac_rules() -> None:
    assert _method_rule("read_namespaced_pod_log", "", None) == ("", "pods/log", "get")
    assert _method_rule("patch_namespaced_custom_object_status", "g", "xs") == ("g", "xs/status", "patch")
    assert _method_rule("list_service_account_for_all_namespaces", "", None) == (
        "",
        "serviceaccounts",
        "list",
    )
    assert _method_rule("replace_namespaced_network_policy", "n", None) == ("n", "networkpolicies", "update")
    assert _method_rule("delete_collection_namespaced_pod", "", None) == ("", "pods", "deletecollection")


def test_the_derivation_sees_the_calls_the_adapter_makes() -> None:
    rules = adapter_rules()
    assert ("", "pods", "create") in rules
    assert (names.GROUP, f"{names.RUNS}/status", "patch") in rules
    assert (names.GROUP, names.SUITES, "list") in rules
    assert ("", "secrets", "watch") in kopf_watch_rules()
    # a Flux-labelled release's HelmRelease: one GET (clients/gitops.py), never a list or a watch
    assert (names.FLUX_GROUP, names.FLUX_HELM_RELEASES, "get") in rules
    assert {r for r in rules if r[0] == names.FLUX_GROUP} == {
        (names.FLUX_GROUP, names.FLUX_HELM_RELEASES, "get")
    }


def _diff(want: set[Rule], have: set[Rule]) -> str:
    return f"missing: {sorted(want - have)}; unused: {sorted(have - want)}"


@needs_helm
@pytest.mark.parametrize("hooks", [True, False])
def test_cluster_wide_roles_grant_exactly_what_the_code_needs(hooks: bool) -> None:
    docs = render_chart(f"config.runChartHooks={str(hooks).lower()}")
    have = granted(docs, "ClusterRole")
    want = needed(cluster_wide=True, hooks=hooks)
    assert have == want, _diff(want, have)


@needs_helm
@pytest.mark.parametrize("hooks", [True, False])
def test_namespaced_roles_grant_exactly_what_the_code_needs(hooks: bool) -> None:
    docs = render_chart("watchNamespaces={a,b}", f"config.runChartHooks={str(hooks).lower()}")
    assert granted(docs, "ClusterRole") == set()
    operator_roles = (d for d in docs if d["kind"] == "Role" and not is_artifacts_reader(d))
    for role in (d for d in operator_roles if not is_lease_role(d) and not is_webhooks_role(d)):
        have = granted([role], "Role")
        want = needed(cluster_wide=False, hooks=hooks)
        assert have == want, _diff(want, have)


def test_hook_rules_are_the_writes_only_chart_test_hooks_make() -> None:
    rules = hook_rules()
    assert ("rbac.authorization.k8s.io", "rolebindings", "create") in rules
    assert ("", "serviceaccounts", "create") in rules
    assert ("batch", "jobs", "create") in rules
    assert ("batch", "jobs", "get") not in rules  # the readiness gate reads Jobs with or without hooks
    assert not {r for r in rules if r[2] in ("list", "watch") and r[1] != "jobs"}


@needs_helm
def test_without_chart_hooks_nothing_lets_the_operator_write_rbac_accounts_or_configs() -> None:
    for docs in (
        render_chart("config.runChartHooks=false"),
        render_chart("config.runChartHooks=false", "watchNamespaces={a}"),
    ):
        writes = {
            (group, resource)
            for group, resource, verb in granted(docs, "ClusterRole") | granted(docs, "Role")
            if verb in ("create", "delete", "update", "patch")
        }
        assert not writes & {
            ("rbac.authorization.k8s.io", "roles"),
            ("rbac.authorization.k8s.io", "rolebindings"),
            ("", "serviceaccounts"),
            ("", "configmaps"),
            ("", "secrets"),
            ("batch", "jobs"),
        }, writes


@needs_helm
def test_the_lease_role_grants_exactly_what_leader_election_calls() -> None:
    want = {r for r in adapter_rules() if r[0] == LEASES}
    assert want == {(LEASES, "leases", "get"), (LEASES, "leases", "create"), (LEASES, "leases", "update")}
    (role,) = [d for d in render_chart() if d["kind"] == "Role" and is_lease_role(d)]
    assert role["metadata"]["namespace"] == "ops"  # the release's namespace, wherever it watches
    assert granted([role], "Role") == want


@needs_helm
def test_the_webhooks_role_grants_get_on_the_one_targets_secret_only() -> None:
    assert not [d for d in render_chart() if d["metadata"]["name"].endswith("-webhooks")]  # off by default
    docs = render_chart("webhooks.existingSecret=hooks", "watchNamespaces={a,b}")
    (role,) = [d for d in docs if d["kind"] == "Role" and is_webhooks_role(d)]
    assert role["metadata"]["namespace"] == "ops"  # the operator's own namespace, wherever it watches
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["hooks"], "verbs": ["get"]}
    ]
    (binding,) = [
        d for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["name"].endswith("-webhooks")
    ]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


@needs_helm
def test_a_shard_lists_and_watches_namespaces_cluster_wide_and_works_only_in_its_namespaces() -> None:
    assert {("", "namespaces", "list")} <= adapter_rules()  # the shard's list (its watch goes through it)
    docs = render_chart("namespaceSelector=helm-e2e.dev/shard=a", "watchNamespaces={a1}")
    assert granted(docs, "ClusterRole") == SHARD
    for role in (
        d for d in docs if d["kind"] == "Role" and not is_lease_role(d) and not is_artifacts_reader(d)
    ):
        assert granted([role], "Role") == needed(cluster_wide=False)


# --- rollback on failure: `helm rollback` is a subprocess, not an adapter call; its rights are a separate value
ROLLBACK_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}


def is_rollback_role(doc: dict[str, Any]) -> bool:
    return str(doc["metadata"]["name"]).endswith("-rollback")


@needs_helm
def test_the_default_chart_grants_nothing_for_rollbacks() -> None:
    docs = render_chart()
    assert not [d for d in docs if is_rollback_role(d)]
    assert not [
        d for d in render_chart("rollback.mode=on-failure") if is_rollback_role(d)
    ]  # RBAC is its own value


def corpus_kinds() -> set[tuple[str, str]]:
    """(API group, plural) of every object the fixture charts and the example chart install (not their
    hooks: `helm rollback` never re-applies a test hook), rendered by the real helm."""
    kinds = set()
    charts = [
        *sorted((ROOT / "tests" / "data" / "charts").iterdir()),
        ROOT / "charts" / "examples" / "demo-service",
    ]
    for chart in charts:
        out = subprocess.run(
            [str(helm_binary()), "template", "rel", str(chart), "-n", "x"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        for doc in (d for d in yaml.safe_load_all(out) if d):
            if "helm.sh/hook" not in ((doc.get("metadata") or {}).get("annotations") or {}):
                group = doc["apiVersion"].rpartition("/")[0]
                kinds.add((group, doc["kind"].lower() + "s"))
    return kinds


@needs_helm
def test_rollback_rbac_is_one_cluster_role_on_release_secrets_and_typical_kinds() -> None:
    docs = [d for d in render_chart("rollback.rbac.create=true") if is_rollback_role(d)]
    assert sorted(d["kind"] for d in docs) == ["ClusterRole", "ClusterRoleBinding"]
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    have = granted([role], "ClusterRole")
    assert not {r for r in have if "*" in r[:2]}  # no wildcard unless asked for
    kinds = {(group, resource) for group, resource, _ in have}
    assert ("", "secrets") in kinds  # Helm's release records
    assert corpus_kinds() >= {("apps", "deployments"), ("", "configmaps"), ("", "services")}
    assert corpus_kinds() <= kinds
    assert have == {(g, r, v) for g, r in kinds for v in ROLLBACK_VERBS}
    assert not {group for group, _ in kinds} & {"rbac.authorization.k8s.io", "admissionregistration.k8s.io"}
    assert not {"escalate", "bind", "impersonate"} & {v for r in role["rules"] for v in r["verbs"]}
    (binding,) = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"] == "ops-helm-e2e-rollback"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "ops-helm-e2e", "namespace": "ops"}]


@needs_helm
def test_rollback_rbac_on_every_kind_is_an_explicit_choice() -> None:
    docs = render_chart("rollback.rbac.create=true", "rollback.rbac.allResources=true")
    (role,) = [d for d in docs if is_rollback_role(d) and d["kind"] == "ClusterRole"]
    assert granted([role], "ClusterRole") == {("*", "*", v) for v in ROLLBACK_VERBS}
    assert not {"escalate", "bind", "impersonate"} & {v for r in role["rules"] for v in r["verbs"]}


@needs_helm
def test_empty_rollback_rules_fail_the_install_instead_of_meaning_everything() -> None:
    args = ["template", "ops", str(CHART), "-n", "ops", "--set", "rollback.rbac.create=true"]
    out = subprocess.run(
        [str(helm_binary()), *args, "--set", "rollback.rbac.rules=null"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "rollback.rbac.allResources=true" in out.stderr


@needs_helm
def test_rollback_rbac_with_watch_namespaces_is_roles_there_and_rules_can_be_narrowed() -> None:
    docs = render_chart(
        "rollback.rbac.create=true",
        "watchNamespaces={a,b}",
        "rollback.rbac.rules[0].apiGroups={apps}",
        "rollback.rbac.rules[0].resources={deployments}",
        "rollback.rbac.rules[0].verbs={get,patch}",
    )
    roles = [d for d in docs if is_rollback_role(d)]
    assert sorted((d["kind"], d["metadata"]["namespace"]) for d in roles) == [
        ("Role", "a"),
        ("Role", "b"),
        ("RoleBinding", "a"),
        ("RoleBinding", "b"),
    ]
    for role in (d for d in roles if d["kind"] == "Role"):
        assert granted([role], "Role") == {("apps", "deployments", "get"), ("apps", "deployments", "patch")}
    assert not [d for d in docs if d["kind"] == "ClusterRole"]


@needs_helm
def test_the_artifacts_reader_role_lets_people_proxy_to_the_artifacts_port_and_nothing_else() -> None:
    (role,) = [d for d in render_chart() if d["kind"] == "Role" and is_artifacts_reader(d)]
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["services/proxy"],
            "resourceNames": ["ops-helm-e2e:artifacts"],
            "verbs": ["get"],
        }
    ]
    bindings = [d for d in render_chart() if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert all(b["roleRef"]["name"] != role["metadata"]["name"] for b in bindings)  # the admin binds it


@needs_helm
def test_argocd_off_grants_nothing_on_applications() -> None:
    on = granted(render_chart(), "ClusterRole")
    assert {("argoproj.io", "applications", v) for v in ("get", "list", "watch")} <= on
    for docs in (render_chart("argocd.mode=off"), render_chart("argocd.mode=off", "watchNamespaces={a}")):
        rules = granted(docs, "ClusterRole") | granted(docs, "Role")
        assert not {r for r in rules if r[0] == "argoproj.io"}, rules
