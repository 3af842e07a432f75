"""Capture real Helm release secrets (install, upgrade, rollback) from the local cluster as golden data.

Run: .venv/bin/python tests/data/releases/capture.py [helm|helm4]   (needs `make cluster-up`;
helm4 is built with `hack/build-binaries.sh helm4`)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "integration"))

from harness import ROOT, start_cluster  # noqa: E402


def main(tool: str) -> None:
    cluster = start_cluster()
    ns = f"golden-capture-{tool}"
    cluster.kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true")
    cluster.kubectl("create", "namespace", ns)
    chart = str(ROOT / "tests" / "data" / "charts" / "tiny")
    cluster.run(tool, "install", "golden", chart, "-n", ns, "--set", "image.tag=1.0.0")
    cluster.run(tool, "upgrade", "golden", chart, "-n", ns, "--set", "image.tag=1.1.0")
    cluster.run(tool, "rollback", "golden", "1", "-n", ns)
    version = cluster.run(tool, "version", "--short").stdout.strip().split("+")[0]
    for revision, trigger in ((1, "install"), (2, "upgrade"), (3, "rollback")):
        secret = cluster.get_json("secret", "-n", ns, f"sh.helm.release.v1.golden.v{revision}")
        for key in ("uid", "resourceVersion", "creationTimestamp", "managedFields"):
            secret["metadata"].pop(key, None)
        stem = f"helm-{version}-{trigger}"
        (HERE / f"{stem}.secret.json").write_text(json.dumps(secret, indent=1, sort_keys=True) + "\n")
        expected = {
            "name": "golden",
            "revision": revision,
            "chart": "tiny",
            "trigger": trigger,
            "status": secret["metadata"]["labels"]["status"],
            "hooks": ["golden-smoke"],
        }
        (HERE / f"{stem}.expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    cluster.kubectl("delete", "namespace", ns, "--wait=false")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "helm")
