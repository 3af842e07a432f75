"""`helm-e2e run` starts without what a run needs only later (issue 30: idle RSS): the report and mail stack,
the artifact stack when artifacts are off, the viewer, and the built-in Kubernetes APIs' models. Checked in a
fresh interpreter: this test process has imported everything already."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DEFERRED = [
    "jinja2",  # the report's templates and E2ESuite rendering (in the sandbox)
    "aiosmtplib",  # sending the report
    "obstore",  # the artifact store
    "jwt",  # artifact upload tokens
    "tarfile",  # artifact bundles
    "helm_e2e.artifacts.service",
    "helm_e2e.artifacts.server",
    "helm_e2e.viewer",
    "kubernetes.client.api.core_v1_api",  # ~20 MiB of models, built on the first call
]

BUILD = """
import json, sys
from helm_e2e.cli import main as cli
from helm_e2e.runtime import main
from helm_e2e.runtime.kopf_wiring import build_registry
from helm_e2e.settings import Settings

registry = build_registry(Settings())
resource_handlers = {  # NoDiffBase keeps kopf from diffing: right only while every handler is on.event
    kind: len(getattr(registry, kind).get_all_handlers()) for kind in ("_watching", "_changing", "_spawning")
}
print(json.dumps({
    "loaded": [m for m in sys.argv[1:] if m in sys.modules],
    "registry": type(registry).__name__,
    "handlers": resource_handlers,
}))
"""

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: not-a-token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def test_starting_the_operator_imports_no_report_artifact_viewer_or_api_model_stack(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HELM_E2E_", "KUBERNETES_"))}
    env.update(KUBECONFIG=str(kubeconfig), HELM_E2E_ARGOCD="off", HELM_E2E_WATCH_NAMESPACES="shop")
    out = subprocess.run(
        [sys.executable, "-c", BUILD, *DEFERRED],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.splitlines()[-1])
    assert got["registry"] == "OperatorRegistry"
    assert got["loaded"] == []
    # only on.event handlers (Secrets, suites, accounts; runs and pods: runtime/lean_watch.py): nothing kopf would need a diff for
    assert got["handlers"] == {"_watching": 3, "_changing": 0, "_spawning": 0}
