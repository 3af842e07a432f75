"""The real `helm rollback`, as a subprocess off the event loop, with a timeout and the operator's own
credentials. Helm's own semantics (three-way merge, hooks, history) are Helm's: nothing is re-implemented.

Credentials: in a pod, a private kubeconfig that points at the service-account token and CA *files*
(`tokenFile`, so the token itself is never written or put on a command line); elsewhere the current
KUBECONFIG, as the operator's own client (clients/kube.py: load_api_client). Helm's cache, config and
data directories go to a private temporary directory (the operator's root filesystem is read-only), removed
when the client is closed, collected or the interpreter exits (a SIGKILLed local run still leaves it behind).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from helm_e2e.core.outcomes.rollback import build_rollback_argv, summarize_helm_error

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class HelmResult:
    ok: bool
    error: str = ""  # one bounded line (core.rollback.summarize_helm_error), never helm's whole stderr


class HelmPort(Protocol):
    async def rollback(self, *, release: str, namespace: str, revision: int) -> HelmResult: ...


def build_incluster_kubeconfig(*, host: str, port: str, account: Path = SERVICE_ACCOUNT) -> dict[str, object]:
    """A kubeconfig for the pod's own service account that refers to the token and CA files."""
    server = f"https://{f'[{host}]' if ':' in host else host}:{port}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "in-cluster",
                "cluster": {"server": server, "certificate-authority": str(account / "ca.crt")},
            }
        ],
        "users": [{"name": "operator", "user": {"tokenFile": str(account / "token")}}],
        "contexts": [{"name": "in-cluster", "context": {"cluster": "in-cluster", "user": "operator"}}],
        "current-context": "in-cluster",
    }


class Helm:
    """Runs helm with the operator's identity; one private home directory per operator process."""

    def __init__(self, *, binary: str, timeout_seconds: float, account: Path = SERVICE_ACCOUNT) -> None:
        self.binary = binary
        self.timeout = timeout_seconds
        self.account = account
        self._home: Path | None = None
        self._remove_home: weakref.finalize[..., Helm] | None = None

    def close(self) -> None:
        """Remove the private home (helm's cache and the kubeconfig naming the token file)."""
        if self._remove_home is not None:
            self._remove_home()
        self._home = self._remove_home = None

    def _env(self) -> dict[str, str]:
        if self._home is None:
            self._home = Path(tempfile.mkdtemp(prefix="helm-e2e-helm-"))
            # finalize, not __del__: it also runs at interpreter exit, and once only
            self._remove_home = weakref.finalize(self, shutil.rmtree, self._home, True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELM_E2E_")}  # not the SMTP password
        for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            env.setdefault(var, str(self._home / var.lower()))
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
        if host and port and (self.account / "token").is_file():
            path = self._home / "kubeconfig"
            if not path.exists():
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    json.dump(build_incluster_kubeconfig(host=host, port=port, account=self.account), f)
            env["KUBECONFIG"] = str(path)
        return env

    async def rollback(self, *, release: str, namespace: str, revision: int) -> HelmResult:
        argv = build_rollback_argv(self.binary, release=release, namespace=namespace, revision=revision)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=self._env(),
            )
        except OSError as e:  # no such binary, not executable
            return HelmResult(False, f"helm could not be started ({type(e).__name__}: {self.binary})")
        try:
            _, stderr = await asyncio.wait_for(proc.communicate(), timeout=self.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return HelmResult(False, f"helm rollback did not finish within {self.timeout:g}s (killed)")
        if proc.returncode != 0:
            return HelmResult(False, summarize_helm_error(stderr.decode(errors="replace")))
        return HelmResult(True)
