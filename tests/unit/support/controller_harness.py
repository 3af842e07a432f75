"""The controller over the in-memory fake of the Kube port, as the executor's tests drive it: release web in
namespace shop, its first run web-1, a passing test hook, a deployed release Secret."""

from __future__ import annotations

from typing import Any

from fake_kube import Clock, FakeKube
from helm_encoding import helm_release_doc, helm_secret

from helm_e2e.reconcile.controller import Controller
from helm_e2e.settings import Settings

NS, RUN = "shop", "web-1"


def passing_hook(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "Pod",
        "path": f"web/templates/{name}.yaml",
        "events": ["test"],
        "manifest": f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n"
        "spec:\n  containers:\n  - name: t\n    image: busybox\n",
    }


def deployed_secret(
    revision: int = 1, hooks: list[dict[str, Any]] | None = None, apply_method: str | None = None
) -> dict[str, Any]:
    doc = helm_release_doc(revision=revision)
    if hooks is not None:
        doc["hooks"] = hooks
    if apply_method is not None:  # Helm 4 writes it: "ssa" (server-side apply) or "csa"
        doc["apply_method"] = apply_method
    secret = helm_secret(doc, name=f"sh.helm.release.v1.web.v{revision}")
    return secret


def make_controller(kube: FakeKube, clock: Clock, **settings: Any) -> Controller:
    base: dict[str, Any] = {"smtp_host": "", "pod_ttl_seconds": 60, "resync_seconds": 5}
    return Controller(settings=Settings(**{**base, **settings}), kube=kube, clock=clock)


async def deploy(controller: Controller, kube: FakeKube, secret: dict[str, Any]) -> None:
    meta = secret["metadata"]
    kube.secrets[(meta["namespace"], meta["name"])] = secret
    await controller.on_release_secret("ADDED", secret)


def status(kube: FakeKube, name: str = RUN) -> dict[str, Any]:
    return dict(kube.runs[(NS, name)].get("status") or {})


def raw_hook(
    kind: str, name: str, body: str, *, policy: str = "before-hook-creation,hook-succeeded"
) -> dict[str, Any]:
    manifest = (
        f"apiVersion: {'batch/v1' if kind == 'Job' else 'v1'}\nkind: {kind}\nmetadata:\n  name: {name}\n"
        f"  annotations:\n    helm.sh/hook: test\n    helm.sh/hook-delete-policy: {policy}\n{body}"
    )
    return {"name": name, "kind": kind, "path": f"t/{name}.yaml", "events": ["test"], "manifest": manifest}
