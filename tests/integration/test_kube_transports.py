"""Both transports of the Kube adapter's per-run calls (clients/kube_rest.py) against the real apiserver: the
same answers and the same errors, whichever sends them (the operator's is aiohttp on its loop, the CLI's the
kubernetes client in a thread); the loop's own parts (a bearer token, a silent server, its request lines)."""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from harness import Cluster, wait_until
from kubernetes import client as k8s
from kubernetes.config import new_client_from_config

from helm_e2e.clients.kube import Kube, ObjectRef, Patched
from helm_e2e.clients.kube_rest import EVENTS, PODS, RUNS, LoopRest, Request, ThreadRest
from helm_e2e.core.model import names
from helm_e2e.core.model.dns_names import run_selector
from helm_e2e.errors import ApiRefused, KubeError

REQUEST_LINE = re.compile(r'"(GET|POST|PUT|PATCH|DELETE) (/[^?\s]*)(\?\S*)? HTTP')  # test_api_requests.py's


@pytest.fixture(params=["loop", "thread"])
async def kube(crds: Cluster, request: pytest.FixtureRequest) -> AsyncIterator[Kube]:
    api = new_client_from_config(config_file=str(crds.kubeconfig))
    rest = LoopRest(api.configuration, timeout_seconds=10) if request.param == "loop" else None
    kube = Kube(api, timeout_seconds=10, rest=rest)
    yield kube
    await kube.rest.close()


def run_body(namespace: str, name: str, release: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": f"{names.GROUP}/{names.VERSION}",
        "kind": "E2ERun",
        "metadata": {"name": name, "namespace": namespace, "labels": {names.RELEASE_LABEL: release}},
        "spec": {
            "release": {
                "name": release,
                "namespace": namespace,
                "revision": 1,
                "chart": "tiny",
                "trigger": "install",
            },
            "tests": [{"name": "smoke", "source": "hook", "timeoutSeconds": 60}],
        },
    }


def pod_body(namespace: str, name: str, run: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {names.MANAGED_BY_LABEL: names.MANAGED_BY, names.RUN_LABEL: run},
        },
        "spec": {"containers": [{"name": "test", "image": "busybox"}]},
    }


async def test_a_run_is_created_read_patched_with_its_precondition_and_deleted(
    kube: Kube, namespace: str
) -> None:
    created = await kube.create_run(run_body(namespace, "web-1"))
    assert created is not None
    assert created["metadata"]["uid"]
    assert await kube.create_run(run_body(namespace, "web-1")) is None  # 409: its name is the lock
    version = created["metadata"]["resourceVersion"]
    patched = await kube.patch_run_status(namespace, "web-1", {"phase": "Running"}, resource_version=version)
    assert patched is Patched.APPLIED
    stale = await kube.patch_run_status(namespace, "web-1", {"phase": "Failed"}, resource_version=version)
    assert stale is Patched.CONFLICT
    run = await kube.get_run(namespace, "web-1")
    assert run is not None
    assert run["status"]["phase"] == "Running"
    await kube.delete_run(namespace, "web-1")
    await kube.delete_run(namespace, "web-1")  # already gone: not an error
    assert await kube.get_run(namespace, "web-1") is None
    assert await kube.patch_run_status(namespace, "web-1", {"phase": "Running"}) is Patched.GONE


async def test_a_releases_runs_are_listed_by_its_label_and_all_runs_without_one(
    kube: Kube, namespace: str
) -> None:
    for name, release in (("web-1", "web"), ("web-2", "web"), ("db-1", "db")):
        await kube.create_run(run_body(namespace, name, release))
    assert sorted(r["metadata"]["name"] for r in await kube.list_runs(namespace, "web")) == ["web-1", "web-2"]
    assert sorted(r["metadata"]["name"] for r in await kube.list_runs(namespace, None)) == [
        "db-1",
        "web-1",
        "web-2",
    ]
    assert await kube.list_runs(namespace, "nothing") == []


async def test_a_pod_is_created_adopted_listed_read_and_deleted(
    kube: Kube, cluster: Cluster, namespace: str, logdir: Path
) -> None:
    await kube.create_pod(pod_body(namespace, "web-1-t", "web-1"))
    await kube.create_pod(pod_body(namespace, "web-1-t", "web-1"))  # an earlier attempt's pod: adopted
    with pytest.raises(ApiRefused) as refused:  # the name is another run's
        await kube.create_pod(pod_body(namespace, "web-1-t", "web-2"))
    assert refused.value.status == 409
    pods = await kube.list_run_pods(namespace, "web-1")
    assert [p["metadata"]["name"] for p in pods] == ["web-1-t"]
    wait_until(
        lambda: (
            cluster.get_json("pod", "-n", namespace, "web-1-t").get("status", {}).get("phase") == "Running"
        ),
        what="kwok runs the pod",
    )
    cluster.serve_log(
        namespace=namespace, pod="web-1-t", lines=[f"line {i}" for i in range(200)], workdir=logdir
    )
    whole = await kube.read_log(namespace, "web-1-t", "test", limit_bytes=1000)  # the last 50 lines
    assert whole.splitlines()[0] == "line 150"
    assert whole.splitlines()[-1] == "line 199"
    short = await kube.read_log(namespace, "web-1-t", "test", limit_bytes=10)
    assert 0 < len(short.encode()) <= 40
    assert short in whole
    assert await kube.read_log(namespace, "nothing-here", "test", limit_bytes=100) == ""
    await kube.delete_pod(namespace, "web-1-t")
    await kube.delete_pod(namespace, "web-1-t")  # already gone: not an error


async def test_refusals_carry_the_apis_own_reason_and_events_are_posted(kube: Kube, namespace: str) -> None:
    bad = pod_body(namespace, "Not_A_Name", "web-1")
    with pytest.raises(ApiRefused) as refused:
        await kube.create_pod(bad)
    assert refused.value.status == 422
    assert refused.value.reason == "Invalid"
    assert "Not_A_Name" in refused.value.message  # the apiserver's message, as the client raised it
    ref = ObjectRef("E2ERun", f"{names.GROUP}/{names.VERSION}", namespace, "web-1", "uid-1")
    await kube.post_event(ref, type="Normal", reason="Checked", message="both transports")
    events = await kube.list_pod_events(namespace, "web-1")  # a Pod's: none
    assert events == []
    listed = await kube.rest.send(Request("GET", EVENTS.path(namespace)))
    assert [(e["reason"], e["involvedObject"]["name"]) for e in listed["items"]] == [("Checked", "web-1")]


async def test_the_loop_sends_a_refreshable_bearer_token(crds: Cluster, namespace: str) -> None:
    crds.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    crds.kubectl(
        "create", "role", "reader", "-n", namespace, "--verb=get,list", f"--resource=e2eruns.{names.GROUP}"
    )
    crds.kubectl(
        "create",
        "rolebinding",
        "reader",
        "-n",
        namespace,
        "--role=reader",
        f"--serviceaccount={namespace}:reader",
    )
    token = crds.kubectl("create", "token", "reader", "-n", namespace).stdout.strip()
    configuration = copy.copy(new_client_from_config(config_file=str(crds.kubeconfig)).configuration)
    configuration.cert_file = configuration.key_file = None  # the token alone says who it is
    tokens = iter([token] * 100)

    def refresh(c: k8s.Configuration) -> None:  # as the in-cluster loader re-reads a rotated token
        c.api_key = {"authorization": f"Bearer {next(tokens)}"}

    configuration.api_key = {"authorization": "Bearer expired"}  # refused (401) unless refreshed
    configuration.refresh_api_key_hook = refresh
    rest = LoopRest(configuration, timeout_seconds=10)
    try:
        listed = await rest.send(Request("GET", RUNS.path(namespace)))
        assert listed["items"] == []
        with pytest.raises(k8s.ApiException) as forbidden:  # the account's, not the admin's, rights
            await rest.send(Request("GET", PODS.path(namespace)))
        assert forbidden.value.status == 403
        assert f"system:serviceaccount:{namespace}:reader" in str(forbidden.value.body)
    finally:
        await rest.close()


async def test_the_loop_logs_each_request_line_as_the_client_did(
    crds: Cluster, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    api = new_client_from_config(config_file=str(crds.kubeconfig))
    rest = LoopRest(api.configuration, timeout_seconds=10)
    caplog.set_level(logging.DEBUG, logger="helm_e2e.clients.kube_rest")
    try:
        await Kube(api, rest=rest).list_run_pods(namespace, "web-1")
    finally:
        await rest.close()
    lines = [m.groups() for m in REQUEST_LINE.finditer(caplog.text)]
    assert lines == [
        ("GET", f"/api/v1/namespaces/{namespace}/pods", "?labelSelector=" + quote_plus(run_selector("web-1")))
    ]


async def test_a_server_that_never_answers_is_no_answer_in_time(crds: Cluster) -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel does), never speaks
    try:
        configuration = copy.copy(new_client_from_config(config_file=str(crds.kubeconfig)).configuration)
        configuration.host = f"http://127.0.0.1:{silent.getsockname()[1]}"
        for rest in (
            LoopRest(configuration, timeout_seconds=1),
            ThreadRest(k8s.ApiClient(configuration), timeout_seconds=1),
        ):
            with pytest.raises(KubeError) as no_answer:
                await asyncio.wait_for(rest.send(Request("GET", "/api/v1/namespaces")), timeout=10)
            assert no_answer.value.status == 0
            assert "127.0.0.1" not in no_answer.value.message
            await rest.close()
    finally:
        silent.close()
