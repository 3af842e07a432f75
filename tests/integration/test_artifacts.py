"""Artifacts on the real apiserver (kwok pods): uploads with the test's own token only, refused over quota,
listed in the run's status, attached to a real e-mail within the budget, fetched by `helm-e2e artifacts`
through the apiserver's service proxy, deleted with the run — on a local directory and on a real
S3-compatible server (versitygw).

kwok runs no container, so the test plays the collector: while the suite's pod "runs" it reads the token the
operator gave the pod's collector sidecar and uploads what a test would have left, exactly as the collector
does (the real collector runs in the real-node tier).
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from harness import (
    ROOT,
    Cluster,
    MailSink,
    OperatorProcess,
    S3Server,
    free_tcp_port,
    node_ip,
    wait_until,
)
from test_operator import wait_run

from helm_e2e.core.model import names

DEMO = str(ROOT / "charts" / "examples" / "demo-service")
STAND_IN_NODE = "helm-e2e-operator-host"
HELM_E2E = str(ROOT / ".venv" / "bin" / "helm-e2e")
JUNIT = b"""<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="2" failures="1">
<testcase classname="tests.test_ui" name="test_login" file="tests/test_ui.py" time="0.1">
<failure message="AssertionError: expected 200, got 500">trace</failure></testcase>
<testcase classname="tests.test_ui" name="test_home" file="tests/test_ui.py" time="0.1"/>
</testsuite></testsuites>"""


def tar_gz(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def suite(name: str, *, seconds: int, exit_code: int = 0) -> str:
    annotations = {"sim.helm-e2e.dev/duration": f"{seconds}s", "sim.helm-e2e.dev/exit-code": str(exit_code)}
    test = {
        "name": name,
        "metadata": {"annotations": annotations},
        "template": {"containers": [{"name": "t", "image": "t:1"}]},
    }
    return json.dumps(
        {
            "apiVersion": "helm-e2e.dev/v1alpha1",
            "kind": "E2ESuite",
            "metadata": {"name": name},
            "spec": {
                "releases": {"charts": ["demo-service"]},
                "readiness": {"mode": "none"},
                "tests": [test],
            },
        }
    )


def upload(url: str, token: str, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(  # noqa: S310 - the operator's http:// URL
        url, data=body, method="POST", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read().decode()


def collector_env(cluster: Cluster, namespace: str, pod: str) -> dict[str, str]:
    """What the operator gave the pod's collector sidecar (the test stands in for it)."""
    body = wait_until(
        lambda: cluster.try_get_json("pod", "-n", namespace, pod), timeout=60, what=f"pod {pod}"
    )
    (collector,) = [c for c in body["spec"]["initContainers"] if c["name"] == names.COLLECTOR_CONTAINER]
    return {e["name"]: e["value"] for e in collector["env"]}


SERVICE = "ops-helm-e2e"  # not the chart's default name: the CLI finds the Service by its labels


def expose_operator(cluster: Cluster, namespace: str, port: int) -> None:
    """A Service named like the chart's whose endpoint is the out-of-cluster operator on this host, so the
    apiserver's service proxy reaches it exactly as it reaches the in-cluster one. The proxy only dials an
    endpoint whose target Pod has that IP: a stand-in Pod on no node carries the host's address."""
    ip = node_ip()
    # a Node nobody runs (kwok simulates only annotated ones): the pod GC keeps pods of existing nodes
    cluster.apply(json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": STAND_IN_NODE}}))
    cluster.apply(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "operator-stand-in"},
                "spec": {"nodeName": STAND_IN_NODE, "containers": [{"name": "c", "image": "none"}]},
            }
        ),
        namespace,
    )
    status = {"status": {"podIP": ip, "podIPs": [{"ip": ip}]}}
    cluster.kubectl(
        "patch",
        "pod",
        "-n",
        namespace,
        "operator-stand-in",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    target = {"kind": "Pod", "name": "operator-stand-in", "namespace": namespace}
    for manifest in (
        {
            "apiVersion": "v1",
            "kind": "Service",
            # labelled as the chart labels it, under another release's name: `helm-e2e artifacts` finds it
            "metadata": {
                "name": SERVICE,
                "labels": {"app.kubernetes.io/name": "helm-e2e", "app.kubernetes.io/component": "artifacts"},
            },
            "spec": {"ports": [{"name": "artifacts", "port": 8081, "targetPort": port}]},
        },
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": SERVICE},
            "subsets": [
                {
                    "addresses": [{"ip": ip, "targetRef": target}],
                    "ports": [{"name": "artifacts", "port": port}],
                }
            ],
        },
    ):
        cluster.apply(json.dumps(manifest), namespace)
    health = f"/api/v1/namespaces/{namespace}/services/{SERVICE}:artifacts/proxy/healthz"
    wait_until(
        lambda: cluster.kubectl("get", "--raw", health, check=False).returncode == 0,
        timeout=30,
        what="the service proxy reaching the operator",
    )


def files_under(root: Path) -> list[str]:
    """What is stored under root/runs; the store removes emptied directories meanwhile (os.walk skips a
    directory that vanishes under it; Path.glob raised FileNotFoundError mid-walk)."""
    found = []
    for directory, _, files in os.walk(root / "runs"):
        found += [str((Path(directory) / name).relative_to(root)) for name in files]
    return sorted(found)


@pytest.fixture(params=["volume", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, str], Any]:
    """(HELM_E2E_ARTIFACTS_STORE, extra env, a way to list what is stored under runs/)."""
    if request.param == "volume":
        root = tmp_path / "artifacts"
        return str(root), {}, lambda: files_under(root)
    s3: S3Server = request.getfixturevalue("s3_server")
    prefix = f"t-{tmp_path.name}"[:40]
    return s3.url(prefix), s3.env, lambda: files_under(s3.root / s3.bucket / prefix)


def test_artifacts_are_uploaded_with_their_token_listed_mailed_fetched_and_deleted_with_the_run(
    crds: Cluster,
    namespace: str,
    tmp_path: Path,
    sink: tuple[MailSink, int],
    store: tuple[str, dict[str, str], Any],
) -> None:
    cluster, (mails, smtp_port), (store_url, store_env, stored) = crds, sink, store
    port = free_tcp_port()
    op = OperatorProcess(
        cluster,
        namespace,
        tmp_path,
        {
            **store_env,
            "HELM_E2E_ARTIFACTS_STORE": store_url,
            "HELM_E2E_ARTIFACTS_URL": f"http://{node_ip()}:{port}",
            "HELM_E2E_ARTIFACTS_PORT": str(port),
            "HELM_E2E_COLLECTOR_IMAGE": "localhost/helm-e2e:dev",
            "HELM_E2E_ARTIFACTS_MAX_TEST_BYTES": str(200_000),
            "HELM_E2E_MAIL_ATTACHMENTS_MAX_BYTES": str(50_000),
            "HELM_E2E_SMTP_HOST": "127.0.0.1",
            "HELM_E2E_SMTP_PORT": str(smtp_port),
            "HELM_E2E_MAIL_TO": "team@example.com",
            "HELM_E2E_RUN_CHART_HOOKS": "false",
        },
    ).start()
    try:
        cluster.apply(suite("ui", seconds=12, exit_code=1), namespace)
        cluster.apply(suite("big", seconds=12), namespace)
        cluster.helm("install", "demo", DEMO, "-n", namespace)
        ui, big = (
            collector_env(cluster, namespace, "demo-1-ui"),
            collector_env(cluster, namespace, "demo-1-big"),
        )
        url, token = ui[names.UPLOAD_URL_ENV], ui[names.UPLOAD_TOKEN_ENV]
        assert ui[names.ARTIFACTS_DIR_ENV] == "/artifacts"

        files = {
            "junit.xml": JUNIT,
            "screens/login.png": b"\x89PNG" + b"\x00" * 1000,
            "trace.har": b"h" * 90_000,
        }
        # nobody else's token: none, a forged one (another run named in a payload signed by someone else)
        assert upload(url, "", tar_gz(files))[0] == 401
        header, payload, signature = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        forged = (
            base64.urlsafe_b64encode(json.dumps({**claims, "run": "other-1"}).encode()).rstrip(b"=").decode()
        )
        assert upload(url, f"{header}.{forged}.{signature}", tar_gz(files))[0] == 401
        status, answer = upload(url, token, tar_gz(files))
        assert status == 201, answer
        # over the per-test quota: refused whole, the reason in the test's status
        too_big = upload(
            big[names.UPLOAD_URL_ENV], big[names.UPLOAD_TOKEN_ENV], tar_gz({"dump.bin": b"\x01" * 300_000})
        )
        assert too_big[0] in (413, 422), too_big

        run = wait_run(cluster, namespace, "demo-1", timeout=90)
        results = {t["name"]: t for t in run["status"]["tests"]}
        assert sorted(f["name"] for f in results["ui"]["artifacts"]) == [
            "junit.xml",
            "screens/login.png",
            "trace.har",
        ]
        assert {f["name"]: f["size"] for f in results["ui"]["artifacts"]}["trace.har"] == 90_000
        assert "per-test quota" in results["big"]["artifactsMessage"]
        assert results["big"].get("artifacts", []) == []

        # the e-mail: the small files attached (budget 50 kB), the big one listed with how to fetch it
        message = wait_until(lambda: next(iter(mails.messages), None), timeout=60, what="the report")
        attached = {p.get_filename(): p.get_content() for p in message.iter_attachments()}
        assert set(attached) == {"ui_junit.xml", "ui_screens_login.png"}
        assert attached["ui_junit.xml"] == JUNIT
        text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        assert "ui/trace.har" in text
        assert f"helm-e2e artifacts demo-1 -n {namespace}" in text

        # fetched with the user's kubeconfig through the service proxy
        expose_operator(cluster, namespace, port)
        out = tmp_path / "fetched"
        fetched = subprocess.run(
            [
                HELM_E2E,
                "artifacts",
                "demo-1",
                "-n",
                namespace,
                "--operator-namespace",
                namespace,
                "-o",
                str(out),
            ],
            capture_output=True,
            text=True,
            env=cluster.env,
            timeout=120,
            check=False,
        )
        assert fetched.returncode == 0, fetched.stderr
        assert (out / "ui" / "junit.xml").read_bytes() == JUNIT
        assert (out / "ui" / "trace.har").stat().st_size == 90_000
        # `helm-e2e junit`: one <testcase> per pytest test, from the stored junit.xml
        junit = subprocess.run(
            [HELM_E2E, "junit", "demo-1", "-n", namespace, "--operator-namespace", namespace],
            capture_output=True,
            text=True,
            env=cluster.env,
            timeout=120,
            check=False,
        )
        assert junit.returncode == 0, junit.stderr
        cases = {c.get("name"): c for c in ElementTree.fromstring(junit.stdout).iter("testcase")}
        assert cases["tests/test_ui.py::test_login"].find("failure") is not None
        assert cases["tests/test_ui.py::test_home"].find("failure") is None
        annotations = (
            cluster.get_json("e2erun", "-n", namespace, "demo-1")["metadata"].get("annotations") or {}
        )
        assert names.ARTIFACTS_TICKET_ANNOTATION not in annotations  # the ticket is gone again
        # without the ticket (a pod reaching the port directly) nothing is served
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"http://{node_ip()}:{port}/v1/runs/{namespace}/demo-1", timeout=10)
        assert denied.value.code == 403
        denied.value.close()

        # deleted with the run: nothing orphaned
        assert any(path.endswith("manifest.json") for path in stored())
        cluster.kubectl("delete", "e2erun", "-n", namespace, "demo-1")
        wait_until(lambda: stored() == [], timeout=30, what="the run's artifacts deleted")
    finally:
        op.stop()
