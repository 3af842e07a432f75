"""The trust boundary shown on the real apiserver: hand-made hostile Secrets, E2ESuites and E2ERuns.

One test per attack (docs/security.md). Each asserts (a) nothing was created where it must not be,
(b) the reason is shown to the user (Warning Event, test reason/message, suite Valid=False, EmailSent,
`helm-e2e wait` output) and (c) a planted secret-looking value appears in no status, Event, operator log
line or e-mail. The resource-exhaustion tests also read the operator's peak RSS (VmHWM) and time a normal
release installed right after the bomb.

Expected to FAIL on 4128813 until the operator is fixed (see their docstrings): both parameters of
test_a_yaml_alias_bomb_in_a_chart_test_hook_is_refused_with_a_reason (hook manifests parsed with
yaml.safe_load, not core/model/limits.py load_yaml) and test_a_malformed_chart_test_hook_is_refused_without_quoting_its_values
(a client-side pydantic ValidationError is retried as a reconcile failure and logged with its input value).
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, Cluster, MailSink, OperatorProcess, assert_stays, wait_until
from test_operator import runs, wait_run

TINY = str(ROOT / "tests" / "data" / "charts" / "tiny")
MAX_RSS_MIB = 200
NORMAL_RUN_WITHIN_SECONDS = 30
MiB = 2**20


# --- helpers ---------------------------------------------------------------------------------------------


@pytest.fixture
def planted() -> str:
    """A secret-looking value that must never leave the place it was planted in."""
    return f"PLANTED-s3cr3t-{secrets.token_hex(8)}"


@pytest.fixture
def other_namespace(cluster: Cluster) -> Iterator[str]:
    name = f"t-hostile-b-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def peak_rss_mib(op: OperatorProcess) -> float:
    """VmHWM (peak resident set) of the operator process itself, in MiB (workers are separate)."""
    assert op.proc is not None
    for line in Path(f"/proc/{op.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pod_hook(name: str, *, spec: dict[str, Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}, "annotations": {"helm.sh/hook": "test"}},
        "spec": spec,
    }
    return {
        "name": name,
        "kind": "Pod",
        "path": f"tiny/templates/{name}.yaml",
        "manifest": json.dumps(manifest),
        "events": ["test"],
    }


def release_doc(
    name: str,
    revision: int,
    *,
    namespace: str,
    hooks: list[dict[str, Any]] | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A release as Helm stores it (the fields the operator reads)."""
    now = now_rfc3339()
    return {
        "name": name,
        "namespace": namespace,
        "version": revision,
        "info": {
            "status": "deployed",
            "description": "Install complete" if revision == 1 else "Upgrade complete",
            "first_deployed": now,
            "last_deployed": now,
        },
        "chart": {
            "metadata": {"name": "tiny", "version": "0.1.0", "appVersion": "1.0.0"},
            "values": values or {},
        },
        "config": {},
        "hooks": hooks or [],
    }


def encode_release(raw: bytes, *, compress: bool = True) -> str:
    """`data.release` of a Helm Secret: base64 (Kubernetes) of base64 of (gzip of) the JSON."""
    blob = gzip.compress(raw, compresslevel=9) if compress else raw
    return base64.b64encode(base64.b64encode(blob)).decode()


def release_secret(
    namespace: str, secret_name: str, *, name: str, revision: int, data: str
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": secret_name,
            "namespace": namespace,
            "labels": {"owner": "helm", "status": "deployed", "name": name, "version": str(revision)},
        },
        "data": {"release": data},
    }


def create(cluster: Cluster, body: dict[str, Any], namespace: str) -> None:
    """`kubectl create` (not apply: no last-applied annotation doubling a large Secret)."""
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(body))


def object_events(cluster: Cluster, namespace: str, name: str) -> list[dict[str, str]]:
    items = cluster.get_json("events", "-n", namespace, "--field-selector", f"involvedObject.name={name}")[
        "items"
    ]
    return [{"type": e["type"], "reason": e["reason"], "message": e.get("message", "")} for e in items]


def wait_event(
    cluster: Cluster, namespace: str, name: str, reason: str, *, timeout: float = 60
) -> dict[str, str]:
    def probe() -> dict[str, str] | None:
        return next((e for e in object_events(cluster, namespace, name) if e["reason"] == reason), None)

    return wait_until(probe, timeout=timeout, interval=0.2, what=f"Event {reason} on {name}")


def pods(cluster: Cluster, namespace: str) -> list[str]:
    return sorted(p["metadata"]["name"] for p in cluster.get_json("pods", "-n", namespace)["items"])


def suite_condition(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    body = cluster.try_get_json("e2esuite", "-n", namespace, name) or {}
    return next((c for c in body.get("status", {}).get("conditions", []) if c["type"] == "Valid"), None)


def wait_suite_invalid(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        cond = suite_condition(cluster, namespace, name)
        return cond if cond and cond["status"] == "False" else None

    return wait_until(probe, what=f"E2ESuite {name} Valid=False")


def suite(name: str, tests: list[dict[str, Any]], *, report_to: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"releases": {"charts": ["tiny"]}, "tests": tests}
    if report_to is not None:
        spec["report"] = {"to": report_to}
    return {
        "apiVersion": "helm-e2e.dev/v1alpha1",
        "kind": "E2ESuite",
        "metadata": {"name": name},
        "spec": spec,
    }


def suite_test(name: str, **pod: Any) -> dict[str, Any]:
    pod.setdefault("containers", [{"name": "t", "image": "localhost/e2e:1"}])
    return {"name": name, "template": pod}


def results_of(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in run["status"]["tests"]}


def helm_e2e_wait(
    cluster: Cluster, namespace: str, release: str, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in cluster.env.items() if not k.startswith("HELM_E2E_")}
    return subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "helm-e2e"),
            "wait",
            release,
            "-n",
            namespace,
            "--interval",
            "0.5",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def assert_not_leaked(
    cluster: Cluster,
    namespaces: list[str],
    planted: str,
    *,
    op: OperatorProcess,
    mails: list[EmailMessage] | None = None,
    handmade_runs: tuple[str, ...] = (),
) -> None:
    """(c): the planted value is in no Event, E2ERun (only the status of one the attacker wrote), E2ESuite
    status, operator log line or e-mail."""
    for ns in namespaces:
        assert planted not in cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout, (
            f"events in {ns}"
        )
        for item in cluster.get_json("e2eruns", "-n", ns)["items"]:
            name = item["metadata"]["name"]
            seen = item.get("status", {}) if name in handmade_runs else item
            assert planted not in json.dumps(seen), f"E2ERun {name}"
        for item in cluster.get_json("e2esuites", "-n", ns)["items"]:
            assert planted not in json.dumps(item.get("status", {})), (
                f"status of suite {item['metadata']['name']}"
            )
    assert planted not in op.logs(), "operator log"
    for message in mails or []:
        assert planted not in message.as_string(), "e-mail"


def leaks(cluster: Cluster, namespaces: list[str], planted: str, *, op: OperatorProcess) -> list[str]:
    """assert_not_leaked as a list of findings (with the operator log lines that quote the value)."""
    try:
        assert_not_leaked(cluster, namespaces, planted, op=op)
    except AssertionError as e:
        lines = [ln[:300] for ln in op.logs().splitlines() if planted in ln]
        return [f"planted value leaked: {str(e).splitlines()[0]}", *lines[:3]]
    return []


def mail_settings(port: int) -> dict[str, str]:
    return {"smtp_host": "127.0.0.1", "smtp_port": str(port), "mail_to": "dev@example.com"}


# --- 1. forged namespace ---------------------------------------------------------------------------------


def test_forged_namespace_in_the_release_json_is_an_identity_mismatch_and_nothing_is_created(
    cluster: Cluster, namespace: str, other_namespace: str, start_operator: Any, planted: str
) -> None:
    op = start_operator(watch_namespaces=f"{namespace},{other_namespace}")
    hostile_pod = {
        "hostNetwork": True,
        "containers": [
            {
                "name": "x",
                "image": "localhost/e2e:1",
                "securityContext": {"privileged": True},
                "env": [{"name": "TOKEN", "value": planted}],
                "volumeMounts": [{"name": "root", "mountPath": "/host"}],
            }
        ],
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
    }
    doc = release_doc(
        "web",
        1,
        namespace=other_namespace,
        hooks=[pod_hook("escape", spec=hostile_pod)],
        values={"pw": planted},
    )
    secret_name = "sh.helm.release.v1.web.v1"
    t0 = time.monotonic()
    create(
        cluster,
        release_secret(
            namespace, secret_name, name="web", revision=1, data=encode_release(json.dumps(doc).encode())
        ),
        namespace,
    )

    event = wait_event(cluster, namespace, secret_name, "ReleaseIdentityMismatch")
    print(f"forged namespace: ReleaseIdentityMismatch after {time.monotonic() - t0:.1f}s")
    assert event["type"] == "Warning"
    assert "namespace" in event["message"]
    assert_stays(
        lambda: runs(cluster, namespace) == [] and runs(cluster, other_namespace) == [],
        seconds=4,
        what="no E2ERun in either namespace",
    )
    assert pods(cluster, namespace) == []
    assert pods(cluster, other_namespace) == []
    op.assert_alive()
    assert_not_leaked(cluster, [namespace, other_namespace], planted, op=op)


# --- 2. run-name preemption ------------------------------------------------------------------------------


@pytest.mark.parametrize("forged_labels", ["consistent", "claiming"])
def test_a_secret_named_for_another_release_cannot_preempt_its_run_name(
    cluster: Cluster, namespace: str, start_operator: Any, planted: str, forged_labels: str
) -> None:
    """`sh.helm.release.v1.other.v<N>` whose JSON says release `shop` revision N (1: the run name the real
    install will need; 13: a later one), with labels that match its name (the JSON is then the liar) or
    labels that match the JSON (the name is then the liar; helm itself then refuses `install shop` until
    the forged Secrets are deleted, which is helm's business)."""
    op = start_operator()
    hook = pod_hook("preempt", spec={"containers": [{"name": "x", "image": "localhost/e2e:1"}]})
    forged = []
    for revision in (1, 13):
        secret_name = f"sh.helm.release.v1.other.v{revision}"
        doc = release_doc("shop", revision, namespace=namespace, hooks=[hook], values={"pw": planted})
        label_name = "other" if forged_labels == "consistent" else "shop"
        body = release_secret(
            namespace,
            secret_name,
            name=label_name,
            revision=revision,
            data=encode_release(json.dumps(doc).encode()),
        )
        create(cluster, body, namespace)
        forged.append(secret_name)
    for secret_name in forged:
        event = wait_event(cluster, namespace, secret_name, "ReleaseIdentityMismatch")
        assert event["type"] == "Warning"
        assert "release" in event["message"]
    assert runs(cluster, namespace) == []
    if forged_labels == "claiming":  # helm itself now believes `shop` exists; the writer's mess goes first
        cluster.kubectl("delete", "secret", "-n", namespace, *forged)

    cluster.helm("install", "shop", TINY, "-n", namespace)
    run = wait_run(cluster, namespace, "shop-1")
    assert run["status"]["phase"] == "Succeeded"
    assert [t["name"] for t in run["spec"]["tests"]] == ["shop-smoke"]  # the chart's hook, not `preempt`
    cluster.helm("upgrade", "shop", TINY, "-n", namespace)
    assert wait_run(cluster, namespace, "shop-2")["status"]["phase"] == "Succeeded"
    assert runs(cluster, namespace) == ["shop-1", "shop-2"]  # no shop-13
    assert not [p for p in pods(cluster, namespace) if "preempt" in p]
    op.assert_alive()
    assert_not_leaked(cluster, [namespace], planted, op=op)


# --- 3. confused deputy via E2ESuite ---------------------------------------------------------------------

VIOLATIONS = {
    "privileged": (
        suite_test(
            "privileged",
            containers=[{"name": "t", "image": "localhost/e2e:1", "securityContext": {"privileged": True}}],
        ),
        "spec.containers[0].securityContext.privileged",
    ),
    "hostnet": (suite_test("hostnet", hostNetwork=True), "spec.hostNetwork"),
    "hostpath": (
        suite_test("hostpath", volumes=[{"name": "root", "hostPath": {"path": "/"}}]),
        "spec.volumes[0].hostPath",
    ),
    "pinned": (suite_test("pinned", nodeName="kwok-node-0"), "spec.nodeName"),
    "unlabelled-sa": (suite_test("unlabelled-sa", serviceAccountName="powerful"), "spec.serviceAccountName"),
}


def test_suite_pods_that_violate_the_policy_end_error_without_a_pod_and_a_labelled_account_is_used(
    cluster: Cluster, namespace: str, start_operator: Any, planted: str
) -> None:
    op = start_operator()
    cluster.kubectl("create", "serviceaccount", "powerful", "-n", namespace)
    cluster.kubectl("create", "serviceaccount", "tester", "-n", namespace)
    cluster.kubectl("label", "serviceaccount", "tester", "-n", namespace, "helm-e2e.dev/test-account=true")
    leaky_env = [{"name": "PW", "value": "{{ values.db.password }}"}]
    tests = []
    for test, _ in copy.deepcopy(list(VIOLATIONS.values())):
        test["template"]["containers"][0]["env"] = leaky_env  # a value rendered into the violating pod
        tests.append(test)
    tests.append(suite_test("token-no-account", automountServiceAccountToken=True))
    tests.append(suite_test("labelled-sa", serviceAccountName="tester"))
    cluster.apply(json.dumps(suite("deputy", tests)), namespace)

    cluster.helm("install", "shop", TINY, "-n", namespace, "--set", f"db.password={planted}")
    run = wait_run(cluster, namespace, "shop-1")

    results = results_of(run)
    for name, (_, field) in VIOLATIONS.items():
        assert (results[name]["phase"], results[name]["reason"]) == ("Error", "PolicyViolation"), name
        assert field in results[name]["message"], (name, results[name]["message"])
    created = pods(cluster, namespace)
    assert not [p for p in created if any(p.endswith(f"-{n}") for n in VIOLATIONS)], created
    assert run["status"]["phase"] == "Error"

    # automount asked for without an allowed account: the pod runs, without a token
    assert results["token-no-account"]["phase"] == "Succeeded"
    token_pod = cluster.get_json("pod", "-n", namespace, "shop-1-token-no-account")
    assert token_pod["spec"]["automountServiceAccountToken"] is False
    # a labelled account is the namespace admin's choice: used as named, token allowed
    assert results["labelled-sa"]["phase"] == "Succeeded"
    labelled = cluster.get_json("pod", "-n", namespace, "shop-1-labelled-sa")
    assert labelled["spec"]["serviceAccountName"] == "tester"
    assert labelled["spec"].get("automountServiceAccountToken") is not False

    reasons = {e["reason"] for e in object_events(cluster, namespace, "shop-1")}
    assert "Completed" in reasons
    waited = helm_e2e_wait(cluster, namespace, "shop", "--timeout", "30")
    assert waited.returncode == 2, waited.stdout + waited.stderr
    for name, (_, field) in VIOLATIONS.items():
        line = next(ln for ln in waited.stdout.splitlines() if ln.strip().startswith(f"{name}:"))
        assert "Error (PolicyViolation:" in line, line
        assert field in line, line
    assert planted not in waited.stdout + waited.stderr
    op.assert_alive()
    assert_not_leaked(cluster, [namespace], planted, op=op)


# --- 4. values leak --------------------------------------------------------------------------------------


def test_a_suite_cannot_leak_values_through_its_error_or_mail_outside_the_allowed_domains(
    cluster: Cluster, namespace: str, start_operator: Any, planted: str, sink: tuple[MailSink, int]
) -> None:
    mail, port = sink
    op = start_operator(**mail_settings(port))
    leak = suite_test(
        "leak", containers=[{"name": "t", "image": "localhost/e2e:{{ values[values.db.password] }}"}]
    )
    cluster.apply(json.dumps(suite("leak", [leak])), namespace)
    exfil = suite_test("exfil")
    cluster.apply(json.dumps(suite("exfil", [exfil], report_to=[f"{planted}@evil.example"])), namespace)

    cluster.helm("install", "shop", TINY, "-n", namespace, "--set", f"db.password={planted}")
    run = wait_run(cluster, namespace, "shop-1")
    assert [t["source"] for t in run["spec"]["tests"]] == ["hook"]  # neither suite was used
    assert run["spec"].get("report", {}).get("to", []) == []

    leaked = wait_suite_invalid(cluster, namespace, "leak")
    assert leaked["reason"] == "TemplateError"
    assert "tests[0].template.containers[0].image" in leaked["message"]
    assert "undefined" in leaked["message"]
    outside = wait_suite_invalid(cluster, namespace, "exfil")
    assert "report.to[0]" in outside["message"]
    assert "domain is not allowed" in outside["message"]
    for name in ("leak", "exfil"):
        assert any(e["type"] == "Warning" for e in object_events(cluster, namespace, name)), name

    wait_until(lambda: len(mail.messages) == 1, what="the report")
    assert mail.recipients == ["dev@example.com"]
    assert_stays(lambda: mail.recipients == ["dev@example.com"], seconds=3, what="nothing mailed elsewhere")
    op.assert_alive()
    assert_not_leaked(cluster, [namespace], planted, op=op, mails=mail.messages)


# --- 5. resource exhaustion ------------------------------------------------------------------------------


def json_bomb(inflated_bytes: int) -> bytes:
    """`[{},{},...]`: tiny gzipped, ten million dicts if parsed."""
    return b"[" + b"{}," * (inflated_bytes // 3 - 1) + b"{}]"


def alias_bomb_hook(
    leaf: str = "lol", levels: int = 7, width: int = 10, where: str = "args"
) -> dict[str, Any]:
    """A test hook with a billion-laughs tree as its container args (not walked before pod creation) or as a
    label value (walked while planning): `width ** levels` leaves once expanded, `width * levels + 1`
    aliases as text (a few KiB). Valid YAML."""
    lines = [f'a0: &a0 ["{leaf}"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    anchors = "\n".join(f"  {line}" for line in lines)
    manifest = (
        f"apiVersion: v1\nkind: Pod\nx-anchors:\n{anchors}\n"
        + "metadata:\n  name: laughs\n  annotations:\n    helm.sh/hook: test\n"
        + (f"  labels:\n    bomb: *a{levels}\n" if where == "labels" else "")
        + "spec:\n  containers:\n  - name: x\n    image: localhost/e2e:1\n"
        + (f"    args: *a{levels}\n" if where == "args" else "")
    )
    return {
        "name": "laughs",
        "kind": "Pod",
        "path": "tiny/templates/laughs.yaml",
        "manifest": manifest,
        "events": ["test"],
    }


def _bomb_secret(kind: str, namespace: str, planted: str) -> tuple[str, dict[str, Any]]:
    name = f"bomb-{kind}"
    secret_name = f"sh.helm.release.v1.{name}.v1"
    if kind == "gzip":  # ~31 MiB inflated: past the 16 MiB gunzip limit
        data = encode_release(json_bomb(31 * MiB))
    elif kind == "items":  # ~12 MiB inflated: under the byte limit, past the 200,000 values limit
        data = encode_release(json_bomb(12 * MiB))
    else:  # kind == "alias-<where>": the leaf stands for a release value helm rendered into the hook
        hook = alias_bomb_hook(planted, where=kind.removeprefix("alias-"))
        doc = release_doc(name, 1, namespace=namespace, hooks=[hook], values={"pw": planted})
        data = encode_release(json.dumps(doc).encode())
    return secret_name, release_secret(namespace, secret_name, name=name, revision=1, data=data)


def _normal_release_latency(cluster: Cluster, namespace: str, op: OperatorProcess) -> float:
    t0 = time.monotonic()
    cluster.helm("install", "normal", TINY, "-n", namespace)
    wait_until(
        lambda: "normal-1" in runs(cluster, namespace),
        timeout=NORMAL_RUN_WITHIN_SECONDS,
        interval=0.2,
        what="the normal release's run right after the bomb",
    )
    latency = time.monotonic() - t0
    assert wait_run(cluster, namespace, "normal-1")["status"]["phase"] == "Succeeded"
    op.assert_alive()
    return latency


def _start_and_wait_ready(
    start_operator: Callable[..., OperatorProcess], cluster: Cluster, namespace: str
) -> OperatorProcess:
    """The operator, once it has planned a first release (so the timings below exclude its start-up)."""
    op = start_operator()
    cluster.helm("install", "warmup", TINY, "-n", namespace, "--set", "test.enabled=false")
    wait_until(lambda: "warmup-1" in runs(cluster, namespace), what="the operator to be ready")
    return op


@pytest.mark.parametrize("kind", ["gzip", "items"])
def test_release_secret_bombs_are_refused_and_the_operator_stays_small_and_responsive(
    cluster: Cluster, namespace: str, start_operator: Any, planted: str, kind: str
) -> None:
    op = _start_and_wait_ready(start_operator, cluster, namespace)
    secret_name, body = _bomb_secret(kind, namespace, planted)
    t0 = time.monotonic()
    create(cluster, body, namespace)

    event = wait_event(cluster, namespace, secret_name, "ReleaseDecodeFailed")
    outcome = time.monotonic() - t0
    expected = "decompresses to more than" if kind == "gzip" else "more than 200000 values"
    assert expected in event["message"], event
    latency = _normal_release_latency(cluster, namespace, op)
    rss = peak_rss_mib(op)
    print(
        f"\n{kind} bomb: refused after {outcome:.2f}s; normal run after {latency:.2f}s; operator VmHWM {rss:.0f} MiB"
    )
    assert runs(cluster, namespace) == ["normal-1", "warmup-1"]
    assert not [p for p in pods(cluster, namespace) if p.startswith("bomb-")]
    assert rss < MAX_RSS_MIB, f"operator peak RSS {rss:.0f} MiB"
    assert_not_leaked(cluster, [namespace], planted, op=op)


@pytest.mark.parametrize("where", ["args", "labels"])
def test_a_yaml_alias_bomb_in_a_chart_test_hook_is_refused_with_a_reason(
    cluster: Cluster, namespace: str, start_operator: Any, planted: str, where: str
) -> None:
    """docs/security.md: hook YAML goes through core/model/limits.py load_yaml (aliases capped), so the hook is
    refused with a reason naming the limit. Found as a bug on 4128813 (fixed since): core/plan/build.py `_hook_test` parses hook
    manifests with `yaml.safe_load`. In `args` the alias tree reaches the operator process inside the plan,
    pod creation fails client-side five times (ReconcileFailed after ~40-75 s, the event loop stalls for
    seconds on each try, reconcile.failed logs a truncated repr of the tree, VmHWM ~170 MiB against ~96).
    In `labels` the sandbox worker hits its memory limit while planning: ReleaseDecodeFailed "planning
    failed: sandboxed work exceeded its memory (MemoryError)" after ~5 s and the release gets no run at all
    (the operator itself is fine)."""
    op = _start_and_wait_ready(start_operator, cluster, namespace)
    secret_name, body = _bomb_secret(f"alias-{where}", namespace, planted)
    t0 = time.monotonic()
    create(cluster, body, namespace)

    def warned() -> dict[str, str] | None:
        found = object_events(cluster, namespace, secret_name) + object_events(
            cluster, namespace, f"bomb-alias-{where}-1"
        )
        refusals = ("HookRefused", "ReleaseDecodeFailed")  # the hook, or the whole release, refused
        return next((e for e in found if e["type"] == "Warning" and e["reason"] in refusals), None)

    latency = _normal_release_latency(cluster, namespace, op)  # while the bomb is being handled
    event = wait_until(warned, timeout=90, what="a Warning about the alias bomb")
    outcome = time.monotonic() - t0
    rss = peak_rss_mib(op)
    print(
        f"\nalias bomb in {where}: {event['reason']} after {outcome:.2f}s; normal run after {latency:.2f}s; "
        f"operator VmHWM {rss:.0f} MiB"
    )
    assert not [p for p in pods(cluster, namespace) if p.startswith("bomb-")]
    problems = leaks(cluster, [namespace], planted, op=op)
    if "alias" not in event["message"].lower():
        problems.append(f"not refused as an alias bomb: {event}")
    if rss >= MAX_RSS_MIB:
        problems.append(f"operator peak RSS {rss:.0f} MiB")
    assert not problems, "\n".join(problems)


def test_a_malformed_chart_test_hook_is_refused_without_quoting_its_values(
    cluster: Cluster, namespace: str, start_operator: Any, planted: str
) -> None:
    """A hook whose `args` holds a list where strings belong (a values list indented one level too deep):
    the test ends Error with a reason, no pod, and the value is quoted nowhere. Found as a bug on 4128813 (fixed since): the
    client-side validation error (pydantic, `input_value=[...]`) is logged as reconcile.failed five times,
    quoting the value, and the run ends only after ~1 min as ReconcileFailed."""
    op = start_operator()
    hook = pod_hook(
        "smoke", spec={"containers": [{"name": "x", "image": "localhost/e2e:1", "args": [["--pw", planted]]}]}
    )
    doc = release_doc("bad", 1, namespace=namespace, hooks=[hook], values={"pw": planted})
    create(
        cluster,
        release_secret(
            namespace,
            "sh.helm.release.v1.bad.v1",
            name="bad",
            revision=1,
            data=encode_release(json.dumps(doc).encode()),
        ),
        namespace,
    )
    run = wait_run(cluster, namespace, "bad-1", timeout=120)
    test = results_of(run)["smoke"]
    print(
        f"\nmalformed hook: run {run['status']['phase']}, test {test['phase']} {test.get('reason')}: {test.get('message')}"
    )
    assert pods(cluster, namespace) == []
    op.assert_alive()
    problems = leaks(cluster, [namespace], planted, op=op)
    if (test["phase"], run["status"]["phase"]) != ("Error", "Error") or not test.get("message"):
        problems.append(
            f"test {test['phase']} ({test.get('reason')}: {test.get('message')!r}), not Error with a reason"
        )
    assert not problems, "\n".join(problems)


TEMPLATE_BOMBS = {
    "ljust": ("{{ 'a'.ljust(10**8) }}", "string longer than"),
    "loops-output": (
        "{% for a in values.big %}{% for b in values.big %}{% for c in values.big %}x{% endfor %}{% endfor %}{% endfor %}",
        "output limit",
    ),
    "loops-cpu": (
        "{% for a in values.big %}{% for b in values.big %}{% for c in values.big %}{% endfor %}{% endfor %}{% endfor %}",
        "rendering took longer than",
    ),
}


@pytest.mark.parametrize("kind", sorted(TEMPLATE_BOMBS))
def test_template_bombs_make_the_suite_invalid_and_the_operator_stays_small_and_responsive(
    cluster: Cluster, namespace: str, start_operator: Any, planted: str, kind: str, tmp_path: Path
) -> None:
    op = _start_and_wait_ready(start_operator, cluster, namespace)
    template, reason = TEMPLATE_BOMBS[kind]
    bomb = suite_test("bomb", containers=[{"name": "t", "image": "localhost/e2e:1", "args": [template]}])
    cluster.apply(json.dumps(suite("bomb", [bomb])), namespace)
    values = tmp_path / "big.yaml"
    values.write_text(json.dumps({"big": list(range(1000)), "pw": planted}))
    t0 = time.monotonic()
    cluster.helm("install", "victim", TINY, "-n", namespace, "-f", str(values))

    invalid = wait_suite_invalid(cluster, namespace, "bomb")
    outcome = time.monotonic() - t0
    assert invalid["reason"] == "TemplateError"
    assert reason in invalid["message"], invalid
    assert "tests[0].template.containers[0].args[0]" in invalid["message"] or kind == "loops-cpu", invalid
    run = wait_run(cluster, namespace, "victim-1")
    assert [t["source"] for t in run["spec"]["tests"]] == ["hook"]
    latency = _normal_release_latency(cluster, namespace, op)  # the bomb suite matches this release too
    rss = peak_rss_mib(op)
    print(
        f"\ntemplate {kind}: suite invalid after {outcome:.2f}s; normal run after {latency:.2f}s; VmHWM {rss:.0f} MiB"
    )
    assert not [p for p in pods(cluster, namespace) if p.endswith("-bomb")]
    assert rss < MAX_RSS_MIB, f"operator peak RSS {rss:.0f} MiB"
    assert_not_leaked(cluster, [namespace], planted, op=op)


# --- 6. mail stuck ---------------------------------------------------------------------------------------


def test_crlf_recipients_never_leave_a_report_stuck_sending(
    cluster: Cluster, namespace: str, start_operator: Any, planted: str, sink: tuple[MailSink, int]
) -> None:
    """The CRDs let CR/LF through in report.to. From a suite it is refused at planning (Valid=False); a
    hand-made E2ERun carrying it (a namespace writer with E2ERun rights, no admission policy) is not the
    operator's record: it ends Refused and no report is ever attempted for it."""
    mail, port = sink
    op = start_operator(**mail_settings(port))
    injected = f"dev@example.com\r\nBcc: {planted}@evil.example"
    cluster.apply(json.dumps(suite("crlf", [suite_test("crlf")], report_to=[injected])), namespace)
    cluster.helm("install", "shop", TINY, "-n", namespace)
    run = wait_run(cluster, namespace, "shop-1")
    assert [t["source"] for t in run["spec"]["tests"]] == ["hook"]
    invalid = wait_suite_invalid(cluster, namespace, "crlf")
    assert "report.to[0]: not a plain e-mail address" in invalid["message"]
    wait_until(lambda: len(mail.messages) == 1, what="the shop-1 report to MAIL_TO only")

    handmade = {
        "apiVersion": "helm-e2e.dev/v1alpha1",
        "kind": "E2ERun",
        "metadata": {"name": "ghost-1"},
        "spec": {
            "release": {
                "name": "ghost",
                "namespace": namespace,
                "revision": 1,
                "chart": "tiny",
                "chartVersion": "0.1.0",
                "trigger": "install",
            },
            "tests": [{"name": "ghost-smoke", "source": "hook", "timeoutSeconds": 60}],
            "report": {"to": [injected]},
        },
    }
    create(cluster, handmade, namespace)

    refused = wait_run(cluster, namespace, "ghost-1", phases=("Refused",), timeout=60)
    assert "no release Secret uid" in refused["status"]["message"]
    assert_stays(
        lambda: (
            not any(
                c["type"] == "EmailSent"
                for c in (cluster.try_get_json("e2erun", "-n", namespace, "ghost-1") or {})
                .get("status", {})
                .get("conditions", [])
            )
        ),
        seconds=3,
        what="no report attempted for a refused run",
    )
    assert len(mail.messages) == 1
    assert all("evil.example" not in r for r in mail.recipients)
    op.assert_alive()
    assert_not_leaked(cluster, [namespace], planted, op=op, mails=mail.messages, handmade_runs=("ghost-1",))


def test_hostile_helpers_are_sane() -> None:
    """The bombs are what they claim (cheap, no cluster)."""
    assert len(gzip.compress(json_bomb(31 * MiB), compresslevel=9)) < 100_000
    assert alias_bomb_hook()["manifest"].count("*a") == 71  # past MAX_YAML_ALIASES (64)
