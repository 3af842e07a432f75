"""An E2ERun is the operator's own record, on the real apiserver (docs/security.md, issue 24 item 1).

- The chart's ValidatingAdmissionPolicy: a tenant with full RBAC on e2eruns cannot create one, write its
  status or change its spec; it keeps `patch` for the annotations re-runs and artifact tickets use.
- Where no policy is installed, the operator itself refuses a forged run that names another namespace's
  release: it ends Refused, and nothing of the victim's release (hook Secret, pods, mail) reaches the
  attacker's namespace or address.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from harness import ROOT, Cluster, MailSink, assert_stays, wait_until
from test_operator import wait_run

HOOKS_SECRET = str(ROOT / "tests" / "data" / "charts" / "hooks-secret")
CHART = str(ROOT / "charts" / "helm-e2e")
PASSWORD = "victims-hook-secret-" + secrets.token_hex(4)


def e2erun(namespace: str, release_namespace: str, *, secret_uid: str = "", to: str = "") -> dict[str, Any]:
    """An E2ERun as the operator writes it, for the release `pay` of `release_namespace`."""
    return {
        "apiVersion": "helm-e2e.dev/v1alpha1",
        "kind": "E2ERun",
        "metadata": {"name": "pay-1", "namespace": namespace},
        "spec": {
            "release": {
                "name": "pay",
                "namespace": release_namespace,
                "revision": 1,
                "chart": "hooks-secret",
                "chartVersion": "0.1.0",
                "trigger": "install",
                "secretUid": secret_uid,
            },
            "tests": [{"name": "pay-login", "source": "hook", "timeoutSeconds": 60}],
            "hookObjects": [{"kind": "Secret", "name": "pay-test-credentials"}],
            "onFailure": "rollback",
            "report": {"to": [to]} if to else {},
        },
    }


@pytest.fixture
def victim(cluster: Cluster) -> Iterator[str]:
    name = f"t-victim-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_a_forged_run_naming_another_namespaces_release_ends_refused_and_reaches_nothing(
    cluster: Cluster, namespace: str, victim: str, start_operator: Any, sink: tuple[MailSink, int]
) -> None:
    mail, smtp_port = sink
    start_operator(
        watch_namespaces=f"{namespace},{victim}",
        smtp_host="127.0.0.1",
        smtp_port=str(smtp_port),
        mail_to="dev@example.com",
        mail_allowed_domains="example.com",
        rollback="on-failure",
    )
    cluster.helm("install", "pay", HOOKS_SECRET, "-n", victim, "--set", f"password={PASSWORD}")
    wait_run(cluster, victim, "pay-1", timeout=90)  # the victim's own run, as usual
    uid = cluster.get_json("secret", "-n", victim, "sh.helm.release.v1.pay.v1")["metadata"]["uid"]

    # the attacker's run: the victim's release, even its Secret's uid, and the attacker's address
    forged = e2erun(namespace, victim, secret_uid=uid, to="attacker@evil.example")
    cluster.apply(json.dumps(forged), namespace)
    run = wait_run(cluster, namespace, "pay-1", phases=("Refused",), timeout=60)
    assert "not its own namespace" in run["status"]["message"]
    items = cluster.get_json("events", "-n", namespace, "--field-selector", "involvedObject.name=pay-1")
    assert [(e["type"], e["reason"]) for e in items["items"]] == [("Warning", "Refused")]

    def nothing_of_the_victim_here() -> bool:
        in_attacker = cluster.get_json("secrets,pods", "-n", namespace)["items"]
        leaked = [o for o in in_attacker if PASSWORD in json.dumps(o) or "pay" in o["metadata"]["name"]]
        return not leaked and all("attacker@evil.example" not in r for r in mail.recipients)

    assert_stays(
        nothing_of_the_victim_here, seconds=6, what="nothing of the victim in the attacker's namespace"
    )
    history = json.loads(cluster.helm("history", "pay", "-n", victim, "-o", "json").stdout)
    assert [h["revision"] for h in history] == [1]  # no rollback of the victim's release


def test_a_runs_spec_cannot_be_patched_and_a_rerun_is_planned_from_the_release(
    cluster: Cluster, namespace: str, start_operator: Any, sink: tuple[MailSink, int]
) -> None:
    mail, smtp_port = sink
    start_operator(smtp_host="127.0.0.1", smtp_port=str(smtp_port), mail_to="dev@example.com")
    cluster.helm("install", "pay", HOOKS_SECRET, "-n", namespace, "--set", f"password={PASSWORD}")
    wait_run(cluster, namespace, "pay-1", timeout=90)
    patch = json.dumps({"spec": {"report": {"to": ["attacker@evil.example"]}}})
    refused = cluster.kubectl(
        "patch", "e2erun", "pay-1", "-n", namespace, "--type=merge", "-p", patch, check=False
    )
    assert refused.returncode != 0
    assert "spec is immutable" in refused.stderr
    cluster.kubectl("annotate", "e2erun", "pay-1", "-n", namespace, "helm-e2e.dev/rerun=again")
    rerun = wait_run(cluster, namespace, "pay-1-r2", timeout=90)
    assert rerun["spec"]["report"] == {} or rerun["spec"]["report"].get("to") in (None, [])
    wait_until(lambda: len(mail.messages) >= 2, timeout=30, what="both reports")
    assert all("attacker@evil.example" not in r for r in mail.recipients)


@pytest.fixture
def admission_policy(cluster: Cluster, namespace: str) -> Iterator[str]:
    """The chart's policy, bound to this test's namespace; the operator is `ops` installed there."""
    rendered = cluster.helm(
        "template", "ops", CHART, "-n", namespace, "-s", "templates/admission-policy.yaml",
        "--set", f"watchNamespaces={{{namespace}}}",
    ).stdout  # fmt: skip
    cluster.apply(rendered)
    yield f"system:serviceaccount:{namespace}:ops-helm-e2e"
    cluster.kubectl("delete", "-f", "-", "--ignore-not-found", input=rendered, check=False)


def test_the_charts_admission_policy_lets_only_the_operator_create_runs_or_write_their_status(
    cluster: Cluster, namespace: str, admission_policy: str
) -> None:
    operator, tenant = admission_policy, f"system:serviceaccount:{namespace}:tenant"
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "e2eruns-all"},
        "rules": [
            {"apiGroups": ["helm-e2e.dev"], "resources": ["e2eruns", "e2eruns/status"], "verbs": ["*"]}
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "e2eruns-all"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "e2eruns-all"},
        "subjects": [
            {"kind": "ServiceAccount", "name": n, "namespace": namespace} for n in ("tenant", "ops-helm-e2e")
        ],
    }
    cluster.apply(json.dumps(role), namespace)
    cluster.apply(json.dumps(binding), namespace)
    run = json.dumps(e2erun(namespace, namespace, secret_uid="x"))

    def create_as(user: str, *dry_run: str) -> Any:
        args = ("create", *dry_run, "--as", user, "-n", namespace, "-f", "-")
        return cluster.kubectl(*args, input=run, check=False)

    # the policy takes effect within a moment of its creation: wait (without creating anything) for the
    # tenant's create to be refused — admission runs for a server-side dry run too
    first = wait_until(
        lambda: (p := create_as(tenant, "--dry-run=server")).returncode != 0 and p,
        timeout=30,
        what="the admission policy to refuse the tenant",
    )
    assert "created by the helm-e2e operator only" in first.stderr
    assert "created by the helm-e2e operator only" in create_as(tenant).stderr
    assert create_as(operator).returncode == 0  # the operator's own account may

    def patch_as(user: str, body: dict[str, Any], *extra: str) -> Any:
        args = ("patch", "e2erun", "pay-1", "-n", namespace, "--as", user, "--type=merge", *extra)
        return cluster.kubectl(*args, "-p", json.dumps(body), check=False)

    annotated = patch_as(tenant, {"metadata": {"annotations": {"helm-e2e.dev/rerun": "t1"}}})
    assert annotated.returncode == 0, annotated.stderr  # re-runs and tickets keep working
    status = patch_as(tenant, {"status": {"phase": "Succeeded"}}, "--subresource=status")
    assert status.returncode != 0
    assert "written by the helm-e2e operator only" in status.stderr
    assert patch_as(operator, {"status": {"phase": "Running"}}, "--subresource=status").returncode == 0
    spec = patch_as(tenant, {"spec": {"deadlineSeconds": 5}})
    assert spec.returncode != 0
    assert "immutable" in spec.stderr


def test_a_bad_release_secret_rewritten_in_a_loop_is_warned_about_once(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    """What the operator remembers per object is bounded and keyed by the object, not by each rewrite."""
    start_operator()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": "sh.helm.release.v1.bad.v1",
            "labels": {"owner": "helm", "name": "bad", "version": "1", "status": "deployed"},
        },
        "data": {"release": "bm90IGEgcmVsZWFzZQ=="},  # "not a release"
    }
    cluster.apply(json.dumps(secret), namespace)

    def warnings() -> list[str]:
        selector = "involvedObject.name=sh.helm.release.v1.bad.v1"
        items = cluster.get_json("events", "-n", namespace, "--field-selector", selector)["items"]
        return [e["reason"] for e in items]

    wait_until(lambda: warnings() == ["ReleaseDecodeFailed"], timeout=60, what="the first warning")
    for i in range(20):  # a tenant rewriting the bad Secret: each write is a new resourceVersion
        cluster.kubectl(
            "label", "secret", "-n", namespace, "sh.helm.release.v1.bad.v1", f"rewrite={i}", "--overwrite"
        )
    assert_stays(lambda: warnings() == ["ReleaseDecodeFailed"], seconds=5, what="one warning for the Secret")
