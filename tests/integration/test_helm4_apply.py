"""Hook objects behave as Helm 4 applies them (issue 27): a release Helm 4 applied server-side (its
`apply_method: ssa`) gets its test hooks' objects applied server-side by Helm's field manager, as
`helm test` of Helm 4 does (pkg/action/release_testing.go → kube.Client.Create with server-side apply);
a release Helm 3 wrote (no apply_method) gets them created, as `helm test` of Helm 3 does."""

from __future__ import annotations

import base64
import gzip
import json
import secrets
from typing import Any

from harness import ROOT, Cluster
from test_operator import wait_run

HOOKS_SECRET = str(ROOT / "tests" / "data" / "charts" / "hooks-secret")


def apply_method(cluster: Cluster, namespace: str, release: str) -> str:
    secret = cluster.get_json("secret", "-n", namespace, f"sh.helm.release.v1.{release}.v1")
    doc = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(secret["data"]["release"]))))
    return str(doc.get("apply_method") or "")


def managers(cluster: Cluster, namespace: str, name: str) -> set[tuple[str, str]]:
    body = cluster.get_json("secret", "-n", namespace, name, "--show-managed-fields")
    return {(m["manager"], m["operation"]) for m in body["metadata"].get("managedFields") or []}


def test_hook_objects_are_applied_server_side_exactly_when_helm_4_applied_the_release(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    start_operator()
    password = secrets.token_hex(8)
    cluster.run("helm4", "install", "four", HOOKS_SECRET, "-n", namespace, "--set", f"password={password}")
    cluster.run("helm", "install", "three", HOOKS_SECRET, "-n", namespace, "--set", f"password={password}")
    assert (apply_method(cluster, namespace, "four"), apply_method(cluster, namespace, "three")) == (
        "ssa",
        "",
    )
    for release in ("four", "three"):
        assert wait_run(cluster, namespace, f"{release}-1", timeout=90)["status"]["phase"] == "Succeeded"
    four = managers(cluster, namespace, "four-test-credentials")
    assert ("helm", "Apply") in four, four  # Helm 4's field manager, by server-side apply
    three = managers(cluster, namespace, "three-test-credentials")
    assert all(op != "Apply" for _, op in three), three  # created, as Helm 3 does
