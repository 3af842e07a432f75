"""`make demo`: the whole product on the local cluster, end to end, then tear down what it started.

cluster (already up via make) → the real node when this host can run one (hack/node.sh up), else kwok →
SMTP sink (aiosmtpd, mails saved as .eml) → operator (`helm-e2e run`) → example E2ESuite + demo-service
chart: install, a passing upgrade, a failing upgrade that the operator rolls back by itself (revision 4,
`HELM_E2E_ROLLBACK=on-failure`) → `kubectl get e2eruns`, `helm history`, `helm-e2e wait` for each revision,
and the received reports.

On the real node every container really runs: the service, the JWT init container, the pytest runner;
the failing revision changes the service's JWT audience, so the token is refused for real. On kwok the
outcomes are simulated (the failing revision's health hook is told to exit 1).
HELM_E2E_DEMO_NODE=kwok forces the simulated mode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
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


REAL_NODE_VALUES = [
    "--set-json",
    'nodeSelector={"helm-e2e.dev/node":"real"}',
    "--set-json",
    'tolerations=[{"key":"helm-e2e.dev/real-node","operator":"Exists","effect":"NoSchedule"}]',
]


def bring_up_real_node() -> str:
    """ "" if the real node is Ready, else why the demo falls back to kwok."""
    if os.environ.get("HELM_E2E_DEMO_NODE", "real") == "kwok":
        return "HELM_E2E_DEMO_NODE=kwok"
    print("starting the real node (hack/node.sh up; the first time builds binaries and images)", flush=True)
    proc = subprocess.run([str(ROOT / "hack" / "node.sh"), "up"], capture_output=True, text=True, check=False)
    if proc.returncode == 0:
        print(proc.stderr.strip().splitlines()[-1], flush=True)
        return ""
    return "hack/node.sh up failed:\n" + "\n".join(proc.stderr.strip().splitlines()[-12:])


def example_suite(real: bool) -> str:
    """The example suite; on the real node its pod template is pinned there (the demo sets it, not the
    operator)."""
    path = ROOT / "charts" / "examples" / "demo-e2esuite.yaml"
    if not real:
        return str(path)
    suite = yaml.safe_load(path.read_text())
    template = suite["spec"]["tests"][0]["template"]
    template["nodeSelector"] = {"helm-e2e.dev/node": "real"}
    template["tolerations"] = [
        {"key": "helm-e2e.dev/real-node", "operator": "Exists", "effect": "NoSchedule"}
    ]
    pinned = OUT / "demo-e2esuite.real-node.yaml"
    pinned.write_text(yaml.safe_dump(suite, sort_keys=False))
    return str(pinned)


def main() -> int:
    cluster = start_cluster()
    env = cluster.env
    OUT.mkdir(parents=True, exist_ok=True)
    why_not_real = bring_up_real_node()
    real = not why_not_real
    if real:
        step("mode: REAL node — containerd + runc run every container (helm-e2e-node)")
    else:
        step("mode: kwok — pod outcomes are SIMULATED, because:")
        print(why_not_real, flush=True)
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
            "HELM_E2E_CLUSTER_NAME": "local-real-node" if real else "local-kwok",
            "HELM_E2E_RESYNC_SECONDS": "1",
            # a Failed run of the deployed revision rolls the release back to the last passing revision
            "HELM_E2E_ROLLBACK": "on-failure",
            "HELM_E2E_HELM_BINARY": str(cluster.bin / "helm"),
        },
    )
    operator.log_path.unlink(missing_ok=True)
    operator.start()
    helm_e2e = str(ROOT / ".venv" / "bin" / "helm-e2e")
    codes = []
    try:
        step("the example E2ESuite (JWT init container + pytest-runner tagged {{ image_tag }})")
        show([str(cluster.bin / "kubectl"), "apply", "-n", NS, "-f", example_suite(real)], env)
        for revision, tag, fail in ((1, "1.0.0", False), (2, "1.1.0", False), (3, "1.2.0", True)):
            verb = "install" if revision == 1 else "upgrade"
            what = "the service now expects another JWT audience" if real else "its health test will fail"
            step(f"helm {verb} demo (image.tag={tag}){' — ' + what if fail else ''}")
            args = [str(cluster.bin / "helm"), verb, "demo", CHART, "-n", NS, "--set", f"image.tag={tag}"]
            if real:
                args += [*REAL_NODE_VALUES, "--wait", "--timeout", "180s"]
                if fail:  # jwt-setup still mints for "demo-service": the API refuses it for real
                    args += ["--set", "jwt.audience=someone-else"]
            elif fail:  # kwok simulates the chart's test pod failing, and serves a realistic log for it
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
                show([helm_e2e, "wait", "demo", "-n", NS, "--timeout", "300", "--interval", "1"], env)
            )
        step("the operator rolled the failing revision back to the last passing one (revision 4)")
        codes.append(
            show(
                [
                    helm_e2e,
                    "wait",
                    "demo",
                    "-n",
                    NS,
                    "--revision",
                    "4",
                    "--timeout",
                    "300",
                    "--interval",
                    "1",
                ],
                env,
            )
        )
        show([str(cluster.bin / "helm"), "history", "demo", "-n", NS], env)
        step("kubectl get e2eruns")
        show([str(cluster.bin / "kubectl"), "get", "e2eruns", "-n", NS], env)
        deadline = time.monotonic() + 30
        while sink.count < 4 and time.monotonic() < deadline:
            time.sleep(0.5)
        step(f"reports received by the SMTP sink: {sink.count}, saved under {OUT.relative_to(ROOT)}/mail/")
        for eml in sorted((OUT / "mail").glob("*.eml")):
            subject = next(
                (ln for ln in eml.read_text(errors="replace").splitlines() if ln.startswith("Subject:")), ""
            )
            print(f"  {eml.relative_to(ROOT)}  {subject}")
        run = json.loads(cluster.kubectl("get", "e2erun", "demo-3", "-n", NS, "-o", "json").stdout)
        failed = [t for t in run["status"]["tests"] if t["phase"] != "Succeeded"]
        for test in failed:
            step(f"the failing test's recorded log tail (helm-e2e logs demo-3 {test['name']})")
            show([helm_e2e, "logs", "demo-3", test["name"], "-n", NS], env)
        rolled = {c["type"]: c for c in run["status"]["conditions"]}.get("RolledBack", {})
        ok = codes == [0, 0, 1, 0] and sink.count == 4 and len(failed) == 1 and rolled.get("status") == "True"
    finally:
        operator.stop()
        smtp.stop()
        cluster.kubectl("delete", "namespace", NS, "--wait=false", check=False)
    step("done" if ok else "demo did not behave as expected")
    print(
        f"operator log: {operator.log_path.relative_to(ROOT)}\n"
        "the cluster keeps running: `make cluster-down` stops it"
        + (", `make node-down` the real node" if real else "")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    os.chdir(ROOT)
    raise SystemExit(main())
