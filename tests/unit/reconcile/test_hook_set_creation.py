"""The executor creates a chart's hook set whole or not at all (issue 24, item 2), driven through the fake
Kube port: Roles before RoleBindings, a binding only to a Role it just created, and on a taken name
everything created of the set deleted again, the tests ended with the reason."""

from __future__ import annotations

from typing import Any

import pytest
from controller_harness import NS, RUN, deploy, deployed_secret, make_controller, raw_hook, status
from fake_kube import Clock, FakeKube

from helm_e2e.core.lifecycle import decide
from helm_e2e.core.model import names
from helm_e2e.core.model.run_codec import run_from_body

RBAC = "rbac.authorization.k8s.io/v1"
READER_RULES = "rules:\n- apiGroups: ['']\n  resources: [pods]\n  verbs: [get, list]\n"
BIND_READER = (
    "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: secret-reader}\n"
    "subjects: [{kind: ServiceAccount, name: web-test}]\n"
)
POD = "spec:\n  serviceAccountName: web-test\n  containers: [{name: t, image: busybox}]\n"


def weighted(hook: dict[str, Any], weight: str) -> dict[str, Any]:
    manifest = hook["manifest"].replace(
        "  annotations:\n", f"  annotations:\n    helm.sh/hook-weight: '{weight}'\n"
    )
    return {**hook, "manifest": manifest}


def rbac_hook(kind: str, name: str, body: str, weight: str) -> dict[str, Any]:
    hook = raw_hook(kind, name, body)
    return weighted(
        {**hook, "manifest": hook["manifest"].replace("apiVersion: v1", f"apiVersion: {RBAC}")}, weight
    )


def attack_hooks() -> list[dict[str, Any]]:
    """Issue 24: a binding weighted before the harmless Role whose name the namespace's admin Role holds."""
    return [
        rbac_hook("RoleBinding", "bind", BIND_READER, "-5"),
        weighted(raw_hook("ServiceAccount", "web-test", ""), "-1"),
        rbac_hook("Role", "secret-reader", READER_RULES, "0"),
        raw_hook("Pod", "web-test", POD),
    ]


def admin_role() -> dict[str, Any]:
    rules = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]
    meta = {"name": "secret-reader", "namespace": NS, "uid": "admin-uid", "labels": {}}
    return {"apiVersion": RBAC, "kind": "Role", "metadata": meta, "rules": rules}


async def test_a_taken_role_name_refuses_the_whole_set_binds_nothing_and_leaves_nothing(
    kube: FakeKube, clock: Clock
) -> None:
    kube.hook_objects[(NS, "Role", "secret-reader")] = admin_role()
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=attack_hooks()))
    await controller.reconcile((NS, RUN))
    assert list(kube.hook_objects) == [(NS, "Role", "secret-reader")]  # the admin's, untouched
    assert kube.hook_objects[(NS, "Role", "secret-reader")]["metadata"]["uid"] == "admin-uid"
    assert kube.deleted_hook_objects == [("ServiceAccount", "web-test")]  # created, then taken back
    test = status(kube)["tests"][0]
    assert (test["phase"], test["reason"]) == ("Error", names.REASON_NAME_TAKEN)
    assert "Role shop/secret-reader" in test["message"]
    assert status(kube)["phase"] == "Error"
    assert kube.created_pods == []


async def test_a_taken_binding_name_takes_back_the_roles_and_accounts_created_before_it(
    kube: FakeKube, clock: Clock
) -> None:
    foreign = {"kind": "RoleBinding", "metadata": {"name": "bind", "namespace": NS, "labels": {}}}
    kube.hook_objects[(NS, "RoleBinding", "bind")] = foreign
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=attack_hooks()))
    await controller.reconcile((NS, RUN))
    assert list(kube.hook_objects) == [(NS, "RoleBinding", "bind")]
    assert kube.deleted_hook_objects == [
        ("Role", "secret-reader"),
        ("ServiceAccount", "web-test"),
    ]  # reversed
    assert status(kube)["tests"][0]["reason"] == names.REASON_NAME_TAKEN


async def test_without_a_taken_name_the_role_comes_first_and_the_binding_is_made(
    kube: FakeKube, clock: Clock
) -> None:
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=attack_hooks()))
    await controller.reconcile((NS, RUN))
    assert [k for _, k, _ in kube.hook_objects] == ["ServiceAccount", "Role", "RoleBinding"]
    assert kube.created_pods == ["web-1-web-test"]
    await controller.reconcile((NS, RUN))  # a second pass adopts them (same uids), binds nothing new
    assert kube.deleted_hook_objects == []


async def test_a_binding_whose_role_was_not_created_in_the_same_pass_is_never_created(
    kube: FakeKube, clock: Clock
) -> None:
    """Defence in depth: whatever order an action arrives in, a binding needs its Role's uid from this pass."""
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=attack_hooks()))
    kube.hook_objects[(NS, "Role", "secret-reader")] = admin_role()
    run = run_from_body(kube.runs[(NS, RUN)])
    labels = {names.MANAGED_BY_LABEL: names.MANAGED_BY, names.RUN_LABEL: RUN}
    account = {"kind": "ServiceAccount", "metadata": {"name": "web-test", "namespace": NS, "labels": labels}}
    binding = {"kind": "RoleBinding", "metadata": {"name": "bind", "namespace": NS, "labels": labels},
               "roleRef": {"kind": "Role", "name": "secret-reader"}, "subjects": []}  # fmt: skip
    action = decide.CreateHookObjects((account, binding), (True, True), ("web-test",))
    refused = await controller.executor.creator.create(run, [action])
    reason, message = refused["web-test"]
    assert reason == names.REASON_HOOK_REFUSED
    assert "Role secret-reader was not created by this hook set" in message
    assert (NS, "RoleBinding", "bind") not in kube.hook_objects
    assert (NS, "ServiceAccount", "web-test") not in kube.hook_objects  # taken back


@pytest.mark.parametrize(("apply_method", "server_side"), [("ssa", True), ("csa", False), (None, False)])
async def test_hook_objects_of_a_release_helm_4_applied_server_side_are_applied_server_side(
    kube: FakeKube, clock: Clock, apply_method: str | None, server_side: bool
) -> None:
    hooks = [weighted(raw_hook("ServiceAccount", "web-test", ""), "-1"), raw_hook("Pod", "web-test", POD)]
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=hooks, apply_method=apply_method))
    await controller.reconcile((NS, RUN))
    assert kube.hook_applies == [("web-test", server_side)]
