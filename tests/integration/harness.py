"""The local cluster as the integration tests see it: real kubectl and helm against hack/cluster.sh."""

from __future__ import annotations

import collections
import email
import email.policy
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import yaml

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("HELM_E2E_CACHE", Path.home() / ".cache" / "helm-e2e"))
BIN = CACHE / "bin" / "current"
# The helm that installs, upgrades and tests the tests' releases: `helm` (v3, hack/versions.sh HELM_VERSION)
# or `helm4` (HELM4_VERSION), a name in BIN. The operator's own `helm rollback` stays HELM_E2E_HELM_BINARY
# (default: `helm` on PATH, i.e. v3): `HELM_E2E_TEST_HELM=helm4` tests the Helm 4 CLI against it.
TEST_HELM = os.environ.get("HELM_E2E_TEST_HELM", "helm")
KUBECONFIG = CACHE / "kubeconfig"

T = TypeVar("T")


def pinned_versions() -> dict[str, str]:
    versions = {}
    for line in (ROOT / "hack" / "versions.sh").read_text().splitlines():
        if "=" in line and not line.startswith(("#", " ")) and "$" not in line:
            key, value = line.split("=", 1)
            versions[key] = value.split()[0]
    return versions


def wait_until(
    probe: Callable[[], T | None], *, timeout: float = 60, interval: float = 0.3, what: str = "condition"
) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def assert_stays(probe: Callable[[], bool], *, seconds: float, what: str, interval: float = 0.5) -> None:
    """A negative check: `probe` must hold for the whole window (several operator resyncs)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert probe(), f"{what}: stopped holding"
        time.sleep(interval)


@dataclass(frozen=True)
class Cluster:
    kubeconfig: Path
    bin: Path

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = f"{self.bin}:{env.get('PATH', '')}"
        env["HELM_CACHE_HOME"] = str(CACHE / "helm" / "cache")
        env["HELM_CONFIG_HOME"] = str(CACHE / "helm" / "config")
        env["HELM_DATA_HOME"] = str(CACHE / "helm" / "data")
        return env

    def run(
        self, tool: str, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.bin / tool), *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{tool} {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}{proc.stdout}"
            )
        return proc

    def kubectl(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run("kubectl", *args, **kw)

    def helm(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        """The CLI under test (TEST_HELM: helm 3 or helm4); a missing binary fails, never skips."""
        assert (self.bin / TEST_HELM).exists(), f"no {TEST_HELM} in {self.bin} (hack/build-binaries.sh)"
        return self.run(TEST_HELM, *args, **kw)

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def try_get_json(self, *args: str) -> Any | None:
        proc = self.kubectl("get", *args, "-o", "json", check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    def apply_crds(self) -> None:
        """Apply this checkout's CRDs and return once the API serves them: each CRD `Established`, then
        discovery answering for every kind (kubectl maps a kind through discovery: right after a first
        apply it says "no matches for kind" — the race a fresh machine meets and a warm one hides)."""
        self.kubectl("apply", "-f", str(ROOT / "crds"))
        crds = [yaml_name(p) for p in sorted((ROOT / "crds").glob("*.yaml"))]
        self.kubectl("wait", "--for=condition=Established", *(f"crd/{c}" for c in crds), "--timeout=60s")
        plurals = {c.split(".", 1)[0] for c in crds}

        def served() -> bool:
            found = self.kubectl("api-resources", "--api-group=helm-e2e.dev", "-o", "name", check=False)
            return plurals <= {line.split(".", 1)[0] for line in found.stdout.split()}

        wait_until(served, timeout=60, interval=0.5, what=f"discovery to serve {sorted(plurals)}")

    def apply(self, manifest: str, namespace: str | None = None) -> None:
        ns = ["-n", namespace] if namespace else []
        self.kubectl("apply", *ns, "-f", "-", input=manifest)

    def serve_log(self, *, namespace: str, pod: str, lines: list[str], workdir: Path) -> None:
        """Make `kubectl logs` of `pod` return `lines` (kwok Logs object + CRI-format file)."""
        path = workdir / f"{namespace}-{pod}.log"
        path.write_text(
            "".join(
                f"2026-01-01T00:00:0{i % 10}.000000000Z stdout F {line}\n" for i, line in enumerate(lines)
            )
        )
        self.apply(
            json.dumps(
                {
                    "apiVersion": "kwok.x-k8s.io/v1alpha1",
                    "kind": "Logs",
                    "metadata": {"name": pod, "namespace": namespace},
                    "spec": {"logs": [{"logsFile": str(path)}]},
                }
            )
        )


def yaml_name(path: Path) -> str:
    """metadata.name of a one-document manifest."""
    doc = yaml.safe_load(path.read_text())
    return str(doc["metadata"]["name"])


APISERVER_REQUESTS = re.compile(r"^apiserver_request_total\{(.*)\} (\S+)$")


def api_requests(cluster: Cluster) -> collections.Counter[tuple[str, str, str]]:
    """The apiserver's own apiserver_request_total by (verb, resource, subresource), summed over codes,
    scopes and groups (it has no user-agent label: diff it around what is measured)."""
    counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for line in cluster.kubectl("get", "--raw", "/metrics").stdout.splitlines():
        if m := APISERVER_REQUESTS.match(line):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            if labels.get("resource"):
                key = (labels["verb"], labels["resource"], labels.get("subresource", ""))
                counts[key] += int(float(m.group(2)))
    return counts


def start_cluster() -> Cluster:
    """Start (or reuse) the local cluster; raise with the script's output if it cannot start."""
    proc = subprocess.run(
        [str(ROOT / "hack" / "cluster.sh"), "up"], capture_output=True, text=True, timeout=3000, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"hack/cluster.sh up failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return Cluster(kubeconfig=KUBECONFIG, bin=BIN)


class OperatorProcess:
    """`helm-e2e run` as a real subprocess against the local cluster, watching one namespace."""

    def __init__(
        self, cluster: Cluster, namespace: str, workdir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.cluster, self.namespace, self.workdir = cluster, namespace, workdir
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"operator-{self.namespace}.log"

    def start(self) -> OperatorProcess:
        # only the settings this test chose: nothing inherited from the caller's HELM_E2E_* environment
        env = {k: v for k, v in self.cluster.env.items() if not k.startswith("HELM_E2E_")}
        env.update(
            {
                "HELM_E2E_WATCH_NAMESPACES": self.namespace,
                "HELM_E2E_METRICS_PORT": "0",
                "HELM_E2E_LOG_FORMAT": "console",
                "HELM_E2E_RESYNC_SECONDS": "1",
            }
        )
        env.update(self.extra_env)
        self.starts += 1
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "helm-e2e"), "run"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, exactly like a crashed pod."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def assert_alive(self) -> None:
        assert self.proc is not None
        assert self.proc.poll() is None, f"operator exited:\n{self.logs()[-3000:]}"


@contextmanager
def smtp_server(handler: Any, *, port: int, host: str = "127.0.0.1") -> Iterator[Any]:
    """A real SMTP server (aiosmtpd) delivering to `handler` while the block runs."""
    from aiosmtpd.controller import Controller  # test-only dependency

    controller = Controller(handler, hostname=host, port=port)
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()


class MailSink:
    """An aiosmtpd handler keeping every message, its envelope recipients and when it arrived."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients: list[str] = []
        self.received_at: list[float] = []  # time.monotonic() of each message

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.recipients += envelope.rcpt_tos
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        self.received_at.append(time.monotonic())
        return "250 OK"


@dataclass(frozen=True)
class S3Server:
    """A running versitygw (hack/versions.sh: VERSITYGW_VERSION): a real S3 API over a POSIX directory."""

    endpoint: str  # http://127.0.0.1:<port>
    bucket: str
    access_key: str  # test values only: the gateway's root account
    secret_key: str
    root: Path  # the POSIX directory behind it: <root>/<bucket>/<key>

    def url(self, prefix: str = "") -> str:
        """The artifact-store URL for `prefix` in the bucket (credentials go in `env`, never here)."""
        path = f"/{prefix}" if prefix else ""
        return f"s3://{self.bucket}{path}?endpoint={self.endpoint}&region=us-east-1"

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}


def node_ip() -> str:
    """This machine's non-loopback address: where pods (and the apiserver's proxy) reach host processes."""
    out = subprocess.run(["ip", "-4", "route", "get", "1.1.1.1"], capture_output=True, text=True, check=True)
    words = out.stdout.split()
    return words[words.index("src") + 1]


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accepts_connections(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def s3_gateway(workdir: Path, *, bucket: str = "helm-e2e-test") -> Iterator[S3Server]:
    """Build (once, cached) and start versitygw on a free port over `workdir`, create `bucket` through its
    admin API (a real CreateBucket, signed by versitygw's own client), stop it afterwards."""
    built = subprocess.run(
        [str(ROOT / "hack" / "build-binaries.sh"), "versitygw"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if built.returncode != 0:
        raise RuntimeError(f"hack/build-binaries.sh versitygw failed:\n{built.stderr[-4000:]}")
    root = workdir / "posix"
    root.mkdir(parents=True, exist_ok=True)
    port = free_tcp_port()
    server = S3Server(
        endpoint=f"http://127.0.0.1:{port}",
        bucket=bucket,
        access_key="helm-e2e-test-access",
        secret_key="helm-e2e-test-secret-not-a-real-one",
        root=root,
    )
    credentials = ["--access", server.access_key, "--secret", server.secret_key]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(workdir)}  # no inherited ROOT_*/VGW_* settings
    log = (workdir / "versitygw.log").open("ab")
    proc = subprocess.Popen(
        [
            str(BIN / "versitygw"),
            *credentials,
            "--port",
            f"127.0.0.1:{port}",
            "--region",
            "us-east-1",
            "--quiet",
            "posix",
            str(root),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        wait_until(lambda: proc.poll() is None and _accepts_connections(port), timeout=30, what="versitygw")
        created = subprocess.run(
            [
                str(BIN / "versitygw"),
                "admin",
                *credentials,
                "--endpoint-url",
                server.endpoint,
                "create-bucket",
                "--owner",
                server.access_key,
                "--bucket",
                bucket,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        if created.returncode != 0:
            raise RuntimeError(f"versitygw create-bucket failed: {created.stderr[-2000:]}")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
