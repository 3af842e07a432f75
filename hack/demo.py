"""`make demo`: the whole product on the local cluster, end to end, then tear down what it started.

cluster (already up via make) → the real node when this host can run one (hack/node.sh up), else kwok →
SMTP sink (aiosmtpd, mails saved as .eml) → operator (`helm-e2e run`) → example E2ESuite + demo-service
chart: install, a passing upgrade, a failing upgrade that the operator rolls back by itself (revision 4,
`HELM_E2E_ROLLBACK=on-failure`) → `kubectl get e2eruns`, `helm history`, `helm-e2e wait` for each revision,
and the received reports.

On the real node every container really runs: the service, the JWT init container, the pytest runner;
the failing revision changes the service's JWT audience, so the token is refused for real. On kwok the
outcomes are simulated (the failing revision's health hook is told to exit 1).
HELM_E2E_DEMO_NODE=kwok forces the simulated mode; HELM_E2E_DEMO_NODE=require (CI) fails instead of falling
back. The demo stops at the first step that does not go as the story says, names it, and exits 1.
"""

from __future__ import annotations

import email
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
from harness import Cluster, OperatorProcess, start_cluster  # noqa: E402

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


class DemoFailed(Exception):
    """A step did not do what the demo's story needs: the demo stops there and says why."""


def show(cmd: list[str], env: dict[str, str], *, expect: int = 0, what: str = "") -> None:
    """Run one step of the story, visibly; anything but the `expect`ed exit code ends the demo."""
    print("$ " + " ".join(Path(cmd[0]).name if i == 0 else c for i, c in enumerate(cmd)), flush=True)
    code = subprocess.run(cmd, env=env, check=False).returncode
    if code != expect:
        raise DemoFailed(f"{what or Path(cmd[0]).name}: exited {code}, expected {expect}")


def check(ok: bool, why: str) -> None:
    if not ok:
        raise DemoFailed(why)


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
    if why_not_real and os.environ.get("HELM_E2E_DEMO_NODE") == "require":
        step(f"demo FAILED: the real node is required (HELM_E2E_DEMO_NODE=require): {why_not_real}")
        return 1
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
    cluster.apply_crds()  # established and discovered before the suite is applied: a fresh cluster's race
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
    failure = ""
    try:
        tell_story(cluster, env, sink, real)
    except DemoFailed as e:
        failure = str(e)
    finally:
        operator.stop()
        smtp.stop()
        cluster.kubectl("delete", "namespace", NS, "--wait=false", check=False)
    step(f"demo FAILED: {failure}" if failure else "done")
    print(
        f"operator log: {operator.log_path.relative_to(ROOT)}\n"
        "the cluster keeps running: `make cluster-down` stops it"
        + (", `make node-down` the real node" if real else "")
    )
    return 1 if failure else 0


def tell_story(cluster: Cluster, env: dict[str, str], sink: MailDir, real: bool) -> None:
    """Revisions 1 and 2 pass, 3 fails (for real on the real node), the operator rolls back to 2 as
    revision 4, which passes: four runs, four mails. Any step that goes otherwise raises DemoFailed."""
    helm_e2e = str(ROOT / ".venv" / "bin" / "helm-e2e")
    kubectl, helm = str(cluster.bin / "kubectl"), str(cluster.bin / "helm")
    step("the example E2ESuite (JWT init container + pytest-runner tagged {{ image_tag }})")
    show([kubectl, "apply", "-n", NS, "-f", example_suite(real)], env, what="apply the E2ESuite")
    for revision, tag, fail in ((1, "1.0.0", False), (2, "1.1.0", False), (3, "1.2.0", True)):
        verb = "install" if revision == 1 else "upgrade"
        what = "the service now expects another JWT audience" if real else "its health test will fail"
        step(f"helm {verb} demo (image.tag={tag}){' — ' + what if fail else ''}")
        args = [helm, verb, "demo", CHART, "-n", NS, "--set", f"image.tag={tag}"]
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
        show(args, env, what=f"helm {verb} (revision {revision})")
        wait = [helm_e2e, "wait", "demo", "-n", NS, "--revision", str(revision), "--timeout", "300"]
        outcome = "Failed (exit 1)" if fail else "Succeeded (exit 0)"
        show([*wait, "--interval", "1"], env, expect=1 if fail else 0, what=f"revision {revision}: {outcome}")
    step("the operator rolled the failing revision back to the last passing one (revision 4)")
    wait = [helm_e2e, "wait", "demo", "-n", NS, "--revision", "4", "--timeout", "300", "--interval", "1"]
    show(wait, env, what="revision 4 (the operator's rollback to 2) Succeeded")
    show([helm, "history", "demo", "-n", NS], env, what="helm history")
    step("kubectl get e2eruns")
    show([kubectl, "get", "e2eruns", "-n", NS], env, what="kubectl get e2eruns")
    deadline = time.monotonic() + 30
    while sink.count < 4 and time.monotonic() < deadline:
        time.sleep(0.5)
    step(f"reports received by the SMTP sink: {sink.count}, saved under {OUT.relative_to(ROOT)}/mail/")
    for eml in sorted((OUT / "mail").glob("*.eml")):
        # the parsed header: a long subject is folded onto the next line in the file
        subject = " ".join(str(email.message_from_bytes(eml.read_bytes())["Subject"] or "").split())
        print(f"  {eml.relative_to(ROOT)}  Subject: {subject}")
    check(sink.count == 4, f"4 report mails expected (one per revision), {sink.count} received")
    run = json.loads(cluster.kubectl("get", "e2erun", "demo-3", "-n", NS, "-o", "json").stdout)
    failed = [t for t in run["status"]["tests"] if t["phase"] != "Succeeded"]
    for test in failed:
        step(f"the failing test's recorded log tail (helm-e2e logs demo-3 {test['name']})")
        show([helm_e2e, "logs", "demo-3", test["name"], "-n", NS], env, what="helm-e2e logs")
    check(len(failed) == 1, f"revision 3: one test should fail; failed: {[t['name'] for t in failed]}")
    rolled = {c["type"]: c for c in run["status"]["conditions"]}.get("RolledBack", {})
    check(rolled.get("status") == "True", f"revision 3 was not rolled back: {rolled or 'no condition'}")
    history = json.loads(cluster.helm("history", "demo", "-n", NS, "-o", "json").stdout)
    last = history[-1]
    check(
        last["revision"] == 4 and "Rollback to 2" in last.get("description", ""),
        f"revision 4 should be Helm's 'Rollback to 2'; the last revision is {last}",
    )


if __name__ == "__main__":
    os.chdir(ROOT)
    raise SystemExit(main())
