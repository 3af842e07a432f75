"""An in-memory `helm rollback` for executor tests: it writes what Helm writes (a new deployed revision
whose description is `Rollback to <target>`, the old one superseded) into a FakeKube's release secrets."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from fake_kube import FakeKube
from helm_encoding import helm_release_doc, helm_secret

from helm_e2e.clients.helm import HelmResult


class FakeHelm:
    def __init__(self, kube: FakeKube) -> None:
        self.kube = kube
        self.calls: list[tuple[str, str, int]] = []  # (namespace, release, target)
        self.error = ""  # set: the call fails with this (as helm's summarized stderr)
        self.during: Callable[[], None] | None = None  # runs inside the call (a conflict, a crash)
        self.doc: dict[str, Any] = {}  # fields of the release doc the rollback revision carries

    async def rollback(self, *, release: str, namespace: str, revision: int) -> HelmResult:
        self.calls.append((namespace, release, revision))
        if self.during is not None:
            self.during()
        if self.error:
            return HelmResult(False, self.error)
        self.write_rollback(namespace, release, revision)
        return HelmResult(True)

    def write_rollback(self, namespace: str, release: str, target: int) -> dict[str, Any]:
        """The secret Helm stores for `helm rollback <release> <target>`; returned for the intake."""
        stored = [s for (ns, _), s in self.kube.secrets.items() if ns == namespace]
        labels = [s["metadata"]["labels"] for s in stored if s["metadata"]["labels"]["name"] == release]
        new = max(int(lab["version"]) for lab in labels) + 1
        for lab in labels:
            if lab["status"] == "deployed":
                lab["status"] = "superseded"
        doc = helm_release_doc(name=release, revision=new, **copy.deepcopy(self.doc))
        doc["info"]["description"] = f"Rollback to {target}"
        secret = helm_secret(doc, name=f"sh.helm.release.v1.{release}.v{new}")
        self.kube.secrets[(namespace, secret["metadata"]["name"])] = secret
        return secret
