"""The operator chart rendered with the real `helm template` (no cluster), and readers of what it renders.

The helm binary is the one on PATH or in ~/.cache/helm-e2e/bin/current (built by `make binaries`); tests that
render are marked `needs_helm`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from repo_paths import CHART


def helm_binary() -> str | None:
    cached = Path.home() / ".cache" / "helm-e2e" / "bin" / "current" / "helm"
    return shutil.which("helm") or (str(cached) if os.access(cached, os.X_OK) else None)


needs_helm = pytest.mark.skipif(helm_binary() is None, reason="no helm binary (make binaries)")


def render_chart(*sets: str) -> list[dict[str, Any]]:
    args = [a for s in sets for a in ("--set", s)]
    out = subprocess.run(
        [str(helm_binary()), "template", "ops", str(CHART), "-n", "ops", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def operator_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container  # type: ignore[no-any-return]


def operator_env(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in operator_container(docs)["env"]}


def role_rules(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def mebibytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit == "Gi" else 1)
