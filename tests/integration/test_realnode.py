"""The real execution tier: the example chart, the JWT init container, the pytest runner and the operator
itself run as real containers (containerd + runc) on the real node of `make node-up`.

The tests, not the operator, pin every pod to that node: the chart through its nodeSelector/tolerations
values, the suite through its pod template.
"""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import tomllib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import ROOT, Cluster, MailSink, free_tcp_port, node_ip, smtp_server, wait_until
from test_operator import wait_run
from test_shipping import cli

pytestmark = pytest.mark.realnode

DEMO = str(ROOT / "charts" / "examples" / "demo-service")
# the tag hack/images.sh gives the operator image: the package's version
OPERATOR_VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
CHART = str(ROOT / "charts" / "helm-e2e")
EVIDENCE = str(ROOT / "tests" / "data" / "charts" / "realnode-artifacts")
NODE_NAME = "helm-e2e-node"
NODE_SELECTOR = {"helm-e2e.dev/node": "real"}
TOLERATIONS = [{"key": "helm-e2e.dev/real-node", "operator": "Exists", "effect": "NoSchedule"}]
ON_REAL_NODE = [
    "--set-json",
    f"nodeSelector={json.dumps(NODE_SELECTOR)}",
    "--set-json",
    f"tolerations={json.dumps(TOLERATIONS)}",
]
DEMO_TESTS = [
    "test_service_is_healthy",
    "test_deployed_version_is_the_released_image_tag",
    "test_api_refuses_a_request_without_a_token",
    "test_api_accepts_the_minted_token",
]


@pytest.fixture(scope="session")
def real_node(crds: Cluster) -> Cluster:
    """`hack/node.sh up` (idempotent); a host that cannot run the node fails the tier with its reasons."""
    proc = subprocess.run(
        [str(ROOT / "hack" / "node.sh"), "up"], capture_output=True, text=True, timeout=3000, check=False
    )
    if proc.returncode != 0:
        pytest.fail(f"hack/node.sh up failed ({proc.returncode}):\n{proc.stderr[-4000:]}", pytrace=False)
    return crds


@pytest.fixture
def node_sink(unused_tcp_port: int) -> Iterator[tuple[MailSink, str, int]]:
    """A real SMTP server on the node's address, reachable from the host and from pods."""
    host = node_ip()
    with smtp_server(MailSink(), port=unused_tcp_port, host=host) as sink:
        yield sink, host, unused_tcp_port


@pytest.fixture
def fresh_volume(real_node: Cluster, namespace: str, tmp_path: Path) -> Iterator[Path]:
    """A volume for the operator chart's claim as a provisioner hands it out: an empty root-owned 0755
    directory nobody prepared for the operator. A `local` PersistentVolume (the kubelet applies a pod's
    fsGroup to it; to a hostPath it does not), pre-bound to the claim of release `ops` in this namespace."""
    directory = tmp_path / "volume"
    directory.mkdir()
    directory.chmod(0o755)
    on_the_node = {"key": "kubernetes.io/hostname", "operator": "In", "values": [NODE_NAME]}
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"{namespace}-artifacts"},
        "spec": {
            "capacity": {"storage": "10Gi"},  # the chart's default claim
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "claimRef": {"namespace": namespace, "name": "ops-helm-e2e-artifacts"},
            "local": {"path": str(directory)},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [on_the_node]}]}},
        },
    }
    real_node.apply(json.dumps(volume))
    yield directory
    real_node.kubectl("delete", "pv", f"{namespace}-artifacts", "--wait=false", check=False)


def pinned_example_suite(namespace: str) -> str:
    suite = yaml.safe_load((ROOT / "charts" / "examples" / "demo-e2esuite.yaml").read_text())
    template = suite["spec"]["tests"][0]["template"]
    template["nodeSelector"], template["tolerations"] = NODE_SELECTOR, TOLERATIONS
    return json.dumps(suite)


def install_demo(
    cluster: Cluster, namespace: str, *args: str, command: str = "install", wait: bool = True
) -> None:
    waiting = ("--wait", "--timeout", "120s") if wait else ()
    cluster.helm(command, "demo", DEMO, "-n", namespace, *ON_REAL_NODE, *args, *waiting)


def result(run: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in run["status"]["tests"] if t["name"] == name)


def mail_for(sink: MailSink, release: str, revision: int) -> EmailMessage:
    head = f"[helm-e2e] {release} r{revision} "
    return wait_until(
        lambda: next((m for m in sink.messages if str(m["Subject"]).startswith(head)), None),
        timeout=60,
        what=f"the report of {release} r{revision}",
    )


def text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def assert_real_pytest_pass(cluster: Cluster, namespace: str, run: dict[str, Any], tag: str) -> None:
    assert run["status"]["phase"] == "Succeeded", json.dumps(run["status"], indent=1)[-3000:]
    api = result(run, "api")
    assert api["pytest"]["passed"] == len(DEMO_TESTS)
    assert api["pytest"]["failed"] == 0
    assert f"{len(DEMO_TESTS)} passed" in api["logTail"]  # pytest's own summary line, from the container log
    hook = result(run, "demo-health")
    assert hook["phase"] == "Succeeded"
    assert hook["exitCode"] == 0
    assert "ok" in hook["logTail"]  # busybox wget printed the service's answer
    pod = cluster.get_json("pod", "-n", namespace, api["pod"])
    assert pod["spec"]["nodeName"] == NODE_NAME
    assert pod["spec"]["containers"][0]["image"] == f"localhost/demo-e2e:{tag}"
    inits = {c["name"]: c for c in pod["status"]["initContainerStatuses"]}
    assert inits["jwt-setup"]["state"]["terminated"]["exitCode"] == 0
    if "helm-e2e-collector" in inits:  # the artifacts sidecar: stopped after the test, having shipped
        assert inits["helm-e2e-collector"]["state"]["terminated"]["exitCode"] == 0


def test_real_upgrade_runs_jwt_setup_and_pytest_in_real_containers_and_reports_a_real_failure(
    real_node: Cluster,
    namespace: str,
    start_operator: Any,
    node_sink: tuple[MailSink, str, int],
    tmp_path: Path,
) -> None:
    cluster, (sink, host, port) = real_node, node_sink
    # MAIL_TO's domain is what suites may mail (the example suite reports to demo-team@example.com)
    artifacts_port = free_tcp_port()
    op = start_operator(
        smtp_host=host,
        smtp_port=str(port),
        mail_from="helm-e2e@example.com",
        mail_to="platform@example.com",
        # the real collector sidecar (the operator's own image) ships to this out-of-cluster operator
        artifacts_store=str(tmp_path / "artifacts"),
        artifacts_url=f"http://{host}:{artifacts_port}",
        artifacts_port=str(artifacts_port),
        collector_image=f"localhost/helm-e2e:{OPERATOR_VERSION}",
    )
    cluster.apply(pinned_example_suite(namespace), namespace)
    install_demo(cluster, namespace, "--set", "image.tag=1.0.0")
    # the release's own pods (not the test pods the operator may be creating this very moment)
    selector = "app.kubernetes.io/instance=demo,!helm-e2e.dev/run"
    deployment = cluster.get_json("pods", "-n", namespace, "-l", selector)["items"]
    assert deployment
    assert {p["spec"].get("nodeName") for p in deployment} == {NODE_NAME}
    wait_run(cluster, namespace, "demo-1", timeout=180)

    install_demo(cluster, namespace, "--set", "image.tag=1.1.0", command="upgrade")
    run = wait_run(cluster, namespace, "demo-2", timeout=180)
    assert_real_pytest_pass(cluster, namespace, run, "1.1.0")
    text = text_part(mail_for(sink, "demo", 2))
    assert "Succeeded" in text
    assert f"{len(DEMO_TESTS)} passed" in text

    # the service now expects another audience: the token minted by jwt-setup is refused for real. Without
    # --wait the revision is `deployed` while the old pods still serve; the readiness gate holds the tests
    # until the new ones do, so the failure is the new version's (the old pods would accept the token).
    install_demo(
        cluster,
        namespace,
        "--set",
        "image.tag=1.2.0",
        "--set",
        "jwt.audience=someone-else",
        command="upgrade",
        wait=False,
    )
    failed = wait_run(cluster, namespace, "demo-3", timeout=180)
    assert failed["status"]["phase"] == "Failed"
    rolled = next(c for c in failed["status"]["conditions"] if c["type"] == "ReleaseReady")
    assert rolled["reason"] == "RolledOut"
    api = result(failed, "api")
    assert api["phase"] == "Failed"
    assert api["exitCode"] == 1
    assert api["pytest"]["passed"] == len(DEMO_TESTS) - 1
    assert api["pytest"]["failed"] == 1
    assert any("test_api_accepts_the_minted_token" in f for f in api["pytest"]["firstFailures"])
    assert "test_api_accepts_the_minted_token" in api["logTail"]
    assert "the service refused the token minted by jwt-setup" in api["logTail"]
    assert result(failed, "demo-health")["phase"] == "Succeeded"
    gate = cli(cluster, "wait", "demo", "-n", namespace, "--timeout", "30", "--interval", "0.5")
    assert gate.returncode == 1
    assert "api: Failed (exit code 1, Error); pytest: 3 passed, 1 failed, 0 errors" in gate.stdout
    assert "FAILED test_demo_api.py::test_api_accepts_the_minted_token" in gate.stdout
    failure_message = mail_for(sink, "demo", 3)
    failure_mail = text_part(failure_message)
    assert "test_api_accepts_the_minted_token" in failure_mail
    # evidence that outlived the pods: the runner's junit.xml and the demo tests' own file, shipped by the
    # real collector sidecar, listed in the run and attached to the failing revision's e-mail
    stored = {f["name"] for f in api["artifacts"]}
    assert {"junit.xml", "pytest-output.txt", "responses.json"} <= stored, api
    attached = {p.get_filename(): p.get_content() for p in failure_message.iter_attachments()}
    assert {"api_junit.xml", "api_responses.json"} <= set(attached), sorted(attached)
    assert any("test_api_accepts_the_minted_token" in f["id"] for f in api["failures"])
    # the regression names the newly failing pytest test against revision 2's run
    regression = failed["status"]["regression"]
    assert regression["comparedWith"] == "demo-2"
    assert any("test_api_accepts_the_minted_token" in t for t in regression["newlyFailing"])
    assert "(1 new)" in str(failure_message["Subject"])
    # the token never leaves the pod: not in the run, not in the mail
    key = cluster.get_json("secret", "demo-jwt-keys", "-n", namespace)["data"]["jwks.json"]
    assert key not in json.dumps(failed)
    assert key not in failure_mail
    op.assert_alive()


def test_operator_runs_in_cluster_from_its_chart_and_image_on_the_real_node(
    real_node: Cluster,
    namespace: str,
    node_sink: tuple[MailSink, str, int],
    fresh_volume: Path,
    tmp_path: Path,
) -> None:
    """The production path: the chart's defaults (its claim for the store, on a volume nobody prepared),
    test pods shipping their files to the operator's Service by its cluster DNS name, the file in the run,
    the mail and `helm-e2e artifacts`."""
    cluster, (sink, host, port) = real_node, node_sink
    owner = fresh_volume.stat()
    assert (owner.st_uid, owner.st_gid, stat.S_IMODE(owner.st_mode)) == (0, 0, 0o755)
    server = cluster.kubectl(
        "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"
    ).stdout
    apiserver_port = server.rsplit(":", 1)[1]
    version = pinned_chart_app_version()
    # kwokctl's apiserver certificate names the node IP, not the kubernetes Service IP: point the
    # in-cluster client at the node IP (a real cluster needs no such override)
    extra_env = [
        {"name": "KUBERNETES_SERVICE_HOST", "value": node_ip()},
        {"name": "KUBERNETES_SERVICE_PORT", "value": apiserver_port},
    ]
    cluster.helm(
        "install", "ops", CHART, "-n", namespace,
        "--set", f"watchNamespaces={{{namespace}}}",
        "--set", "image.repository=localhost/helm-e2e",
        "--set", f"image.tag={version}",
        "--set", f"smtp.host={host}",
        "--set", f"smtp.port={port}",
        "--set", "smtp.from=helm-e2e@example.com",
        "--set", "smtp.to={platform@example.com}",
        "--set", "smtp.tls=none",  # the test sink speaks plain SMTP; the chart defaults to STARTTLS
        "--set", "config.resyncSeconds=2",
        "--set-json", f"extraEnv={json.dumps(extra_env)}",
        *ON_REAL_NODE,
        "--wait", "--timeout", "180s",
    )  # fmt: skip
    pod = cluster.get_json("pods", "-n", namespace, "-l", "app.kubernetes.io/name=helm-e2e")["items"][0]
    assert pod["spec"]["nodeName"] == NODE_NAME
    assert pod["spec"]["serviceAccountName"] == "ops-helm-e2e"
    status = pod["status"]["containerStatuses"][0]
    assert status["ready"] is True
    assert status["restartCount"] == 0, previous_logs(cluster, namespace, pod)
    assert status["imageID"]  # a real image in containerd, not a simulation

    cluster.apply(pinned_example_suite(namespace), namespace)
    install_demo(cluster, namespace, "--set", "image.tag=1.0.0")
    wait_run(cluster, namespace, "demo-1", timeout=180)
    install_demo(cluster, namespace, "--set", "image.tag=1.1.0", command="upgrade")
    run = wait_run(cluster, namespace, "demo-2", timeout=180)
    assert_real_pytest_pass(cluster, namespace, run, "1.1.0")
    text = text_part(mail_for(sink, "demo", 2))
    assert f"{len(DEMO_TESTS)} passed" in text
    # two replicas: the leader (holder of the Lease) did the work, the standby only waited
    pods = cluster.get_json("pods", "-n", namespace, "-l", "app.kubernetes.io/name=helm-e2e")["items"]
    logs = "".join(cluster.kubectl("logs", "-n", namespace, p["metadata"]["name"]).stdout for p in pods)
    assert "demo-2" in logs
    assert "forbidden" not in logs.lower()  # namespaced RBAC suffices: no discovery of namespaces/CRDs
    # the artifacts server runs in the operator's container, behind the chart's Service, and the apiserver's
    # service proxy reaches it (what `helm-e2e artifacts` uses)
    health = f"/api/v1/namespaces/{namespace}/services/ops-helm-e2e:artifacts/proxy/healthz"
    assert json.loads(cluster.kubectl("get", "--raw", health).stdout) == {"ok": True}
    assert_chart_test_evidence_reaches_the_run_the_mail_and_the_cli(cluster, namespace, sink, tmp_path)
    # the store is the chart's claim: the operator made its files on the volume the kubelet gave its group
    assert (fresh_volume / "keys" / "upload-signing-key").is_file()
    assert fresh_volume.stat().st_gid == 65532
    restarted = cluster.get_json("pod", "-n", namespace, pod["metadata"]["name"])["status"][
        "containerStatuses"
    ][0]
    assert restarted["restartCount"] == 0, previous_logs(cluster, namespace, pod)


def assert_chart_test_evidence_reaches_the_run_the_mail_and_the_cli(
    cluster: Cluster, namespace: str, sink: MailSink, tmp_path: Path
) -> None:
    """A chart's own test pod writes a file; its collector ships it by the Service's DNS name."""
    cluster.helm("install", "ev", EVIDENCE, "-n", namespace, *ON_REAL_NODE)
    run = wait_run(cluster, namespace, "ev-1", timeout=180)
    test = result(run, "ev-evidence")
    content = b"evidence of ev r1\n"
    digest = hashlib.sha256(content).hexdigest()
    assert test.get("artifacts") == [{"name": "evidence.txt", "size": len(content), "sha256": digest}], (
        json.dumps(test)[-2000:] + collector_log(cluster, namespace, test["pod"])
    )
    pod = cluster.get_json("pod", "-n", namespace, test["pod"])
    collector = next(c for c in pod["spec"]["initContainers"] if c["name"] == "helm-e2e-collector")
    url = next(e["value"] for e in collector["env"] if e["name"] == "HELM_E2E_UPLOAD_URL")
    assert url.startswith(f"http://ops-helm-e2e.{namespace}.svc:8081/"), url
    assert "shipped 1 files: 201" in collector_log(cluster, namespace, test["pod"])
    attached = {p.get_filename(): p.get_content() for p in mail_for(sink, "ev", 1).iter_attachments()}
    assert attached.get("ev-evidence_evidence.txt") in (content, content.decode()), sorted(attached)
    out = tmp_path / "fetched"
    fetched = cli(
        cluster, "artifacts", "ev-1", "-n", namespace, "-o", str(out),
        "--operator-namespace", namespace, "--operator-service", "ops-helm-e2e",
    )  # fmt: skip
    assert fetched.returncode == 0, fetched.stderr
    assert (out / "ev-evidence" / "evidence.txt").read_bytes() == content


def collector_log(cluster: Cluster, namespace: str, pod: str) -> str:
    return cluster.kubectl("logs", "-n", namespace, pod, "-c", "helm-e2e-collector", check=False).stdout


def previous_logs(cluster: Cluster, namespace: str, pod: dict[str, Any]) -> str:
    """Why a container restarted: its last state and the tail of the log it left."""
    name = pod["metadata"]["name"]
    state = cluster.get_json("pod", "-n", namespace, name)["status"]["containerStatuses"][0].get("lastState")
    logs = cluster.kubectl("logs", "-n", namespace, name, "--previous", "--tail", "60", check=False)
    return f"last state {json.dumps(state)}\n{logs.stdout[-6000:]}{logs.stderr[-500:]}"


def pinned_chart_app_version() -> str:
    chart = yaml.safe_load((Path(CHART) / "Chart.yaml").read_text())
    return str(chart["appVersion"])


BATS = str(ROOT / "tests" / "data" / "charts" / "realnode-bats")


def test_a_charts_hook_serviceaccount_and_configmap_feed_its_real_test_pod_on_every_revision(
    real_node: Cluster, namespace: str, start_operator: Any
) -> None:
    """The Grafana shape on real containers: the Pod really reads the hook ConfigMap and runs as the hook
    ServiceAccount; revision 2 re-creates both (before-hook-creation) for its own run."""
    cluster = real_node
    start_operator()
    for revision, command in ((1, "install"), (2, "upgrade")):
        cluster.helm(command, "bats", BATS, "-n", namespace, *ON_REAL_NODE)
        run = wait_run(cluster, namespace, f"bats-{revision}", timeout=180)
        test = result(run, "bats-test")
        assert (run["status"]["phase"], test["exitCode"]) == ("Succeeded", 0), json.dumps(run["status"])[
            -2000:
        ]
        assert f"script of revision {revision} read from the hook ConfigMap" in test["logTail"]
        assert "running as the hook ServiceAccount" in test["logTail"]
        pod = cluster.get_json("pod", "-n", namespace, test["pod"])
        assert (pod["spec"]["nodeName"], pod["spec"]["serviceAccountName"]) == (NODE_NAME, "bats-test")
        config = cluster.get_json("configmap", "bats-test", "-n", namespace)
        owner = config["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"]) == ("E2ERun", f"bats-{revision}")  # re-created for this run


def test_a_failing_jwt_setup_init_container_shows_its_own_log_line_and_terminated_state(
    real_node: Cluster, namespace: str, start_operator: Any
) -> None:
    """jwt-setup refuses a bad argument for real: the run keeps *its* log (not the never-started pytest
    container's), names it as the log container, and keeps its terminated state and the kubelet's Events."""
    cluster = real_node
    start_operator()
    suite = json.loads(pinned_example_suite(namespace))
    init = suite["spec"]["tests"][0]["template"]["initContainers"][0]
    init["args"] = [("--expires-in=0" if a.startswith("--expires-in=") else a) for a in init["args"]]
    cluster.apply(json.dumps(suite), namespace)
    install_demo(cluster, namespace, "--set", "image.tag=1.0.0")
    run = wait_run(cluster, namespace, "demo-1", timeout=180)

    api = result(run, "api")
    assert (api["phase"], api["reason"], api["exitCode"]) == ("Error", "InitContainerFailed", 1), json.dumps(
        api
    )[-2000:]
    assert api["logContainer"] == "jwt-setup"
    assert "jwt-setup: error: --expires-in must be positive" in api["logTail"]  # its own stderr line
    containers = {c["name"]: c for c in api["diagnostics"]["containers"]}
    jwt_setup = containers["jwt-setup"]
    assert (jwt_setup["init"], jwt_setup["state"], jwt_setup["exitCode"]) == (True, "terminated", 1)
    assert jwt_setup["reason"] == "Error"
    assert containers["pytest"]["state"] == "waiting"  # it never started
    kubelet = {e["reason"] for e in api["diagnostics"]["events"]}
    assert {"Created", "Started"} <= kubelet, kubelet  # the real kubelet's Events about the pod
    assert "diagnostics" not in result(run, "demo-health")  # a passing test keeps none
    shown = cli(cluster, "logs", "demo-1", "api", "-n", namespace)
    assert shown.returncode == 0
    assert shown.stdout.index("terminated jwt-setup (init) - Error (exit 1)") < shown.stdout.index(
        "jwt-setup: error: --expires-in must be positive"
    )
