"""`make demo`: the whole product on the local cluster, end to end, then tear down what it started.

cluster (already up via make) → SMTP sink (aiosmtpd, mails saved as .eml) → operator (`helm-e2e run`) →
example E2ESuite + demo-service chart: install, a passing upgrade, a failing upgrade → `kubectl get
e2eruns`, `helm-e2e wait` for each revision, and the received reports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from harness import OperatorProcess, start_cluster  # noqa: E402

NS = "helm-e2e-demo"
OUT = ROOT / "out" / "demo"
CHART = str(ROOT / "charts" / "examples" / "demo-service")


class MailDir:
    def __init__(self, path: Path) -> None:
        self.path, self.count = path, 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        (self.path / f"{self.count:02d}.eml").write_bytes(envelope.content)
        return "250 OK"


def step(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def show(cmd: list[str], env: dict[str, str]) -> int:
    print("$ " + " ".join(Path(cmd[0]).name if i == 0 else c for i, c in enumerate(cmd)), flush=True)
    return subprocess.run(cmd, env=env, check=False).returncode


def main() -> int:
    cluster = start_cluster()
    env = cluster.env
    (OUT / "mail").mkdir(parents=True, exist_ok=True)
    for old in (OUT / "mail").glob("*.eml"):
        old.unlink()
    sink = MailDir(OUT / "mail")
    smtp = Controller(sink, hostname="127.0.0.1", port=2525)
    smtp.start()
    cluster.kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true", timeout=180)
    cluster.kubectl("create", "namespace", NS)
    cluster.kubectl("apply", "-f", str(ROOT / "crds"))
    operator = OperatorProcess(
        cluster,
        NS,
        OUT,
        {
            "HELM_E2E_SMTP_HOST": "127.0.0.1",
            "HELM_E2E_SMTP_PORT": "2525",
            "HELM_E2E_MAIL_TO": "platform@example.com",
            "HELM_E2E_CLUSTER_NAME": "local-kwok",
            "HELM_E2E_RESYNC_SECONDS": "1",
        },
    )
    operator.log_path.unlink(missing_ok=True)
    operator.start()
    helm_e2e = str(ROOT / ".venv" / "bin" / "helm-e2e")
    codes = []
    try:
        step("the example E2ESuite (JWT init container + pytest-runner tagged {{ image_tag }})")
        show(
            [str(cluster.bin / "kubectl"), "apply", "-n", NS, "-f", "charts/examples/demo-e2esuite.yaml"], env
        )
        for revision, tag, fail in ((1, "1.0.0", False), (2, "1.1.0", False), (3, "1.2.0", True)):
            verb = "install" if revision == 1 else "upgrade"
            step(f"helm {verb} demo (image.tag={tag}){' — its health test will fail' if fail else ''}")
            args = [str(cluster.bin / "helm"), verb, "demo", CHART, "-n", NS, "--set", f"image.tag={tag}"]
            if fail:  # kwok simulates the chart's test pod failing, and serves a realistic log for it
                args += ["--set-string", "tests.podAnnotations.sim\\.helm-e2e\\.dev/exit-code=1"]
                cluster.serve_log(
                    namespace=NS,
                    pod="demo-3-demo-health",
                    workdir=OUT,
                    lines=[
                        "Connecting to demo:8080 (10.0.0.7:8080)",
                        "wget: server returned error: HTTP/1.1 503 Service Unavailable",
                    ],
                )
            show(args, env)
            codes.append(
                show([helm_e2e, "wait", "demo", "-n", NS, "--timeout", "120", "--interval", "1"], env)
            )
        step("kubectl get e2eruns")
        show([str(cluster.bin / "kubectl"), "get", "e2eruns", "-n", NS], env)
        deadline = time.monotonic() + 30
        while sink.count < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
        step(f"reports received by the SMTP sink: {sink.count}, saved under {OUT.relative_to(ROOT)}/mail/")
        for eml in sorted((OUT / "mail").glob("*.eml")):
            subject = next(
                (ln for ln in eml.read_text(errors="replace").splitlines() if ln.startswith("Subject:")), ""
            )
            print(f"  {eml.relative_to(ROOT)}  {subject}")
        run = json.loads(cluster.kubectl("get", "e2erun", "demo-3", "-n", NS, "-o", "json").stdout)
        failed = [t for t in run["status"]["tests"] if t["phase"] != "Succeeded"]
        step("the failing test's recorded log tail (helm-e2e logs demo-3 demo-health)")
        show([helm_e2e, "logs", "demo-3", "demo-health", "-n", NS], env)
        ok = codes == [0, 0, 1] and sink.count == 3 and len(failed) == 1
    finally:
        operator.stop()
        smtp.stop()
        cluster.kubectl("delete", "namespace", NS, "--wait=false", check=False)
    step("done" if ok else "demo did not behave as expected")
    print(
        f"operator log: {operator.log_path.relative_to(ROOT)}\n"
        "the cluster keeps running: `make cluster-down` stops it"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    os.chdir(ROOT)
    raise SystemExit(main())
