"""RolloutReader: one bounded GET per object, raw JSON, 404 = None, other errors = KubeError (no cluster)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import kubernetes.client as k8s
import pytest
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from helm_e2e.clients.rollout import RolloutReader, measure_check
from helm_e2e.core.plan.readiness import ObjectKey
from helm_e2e.errors import KubeError

NS = "shop"
WEB = ObjectKey("Deployment", "apps/v1", NS, "web")
READY_DEPLOYMENT = {
    "metadata": {"name": "web", "namespace": NS, "generation": 1},
    "spec": {"replicas": 1},
    "status": {
        "observedGeneration": 1,
        "replicas": 1,
        "updatedReplicas": 1,
        "readyReplicas": 1,
        "availableReplicas": 1,
    },
}


class Response:
    """urllib3's answer as the generated client returns it with `_preload_content=False`: not read yet."""

    def __init__(self, body: Any) -> None:
        self.data = json.dumps(body).encode()

    def read(self, amt: int) -> bytes:
        return self.data[:amt]

    def release_conn(self) -> None:
        return None

    def close(self) -> None:
        return None


def api_exception(status: int, reason: str, message: str) -> ApiException:
    e = ApiException(status=status, reason=reason)
    e.body = json.dumps({"kind": "Status", "reason": reason, "message": message})
    return e


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, dict[str, Any]]]:
    """Every GET the reader makes: (name, namespace, kwargs). Deployments answer by name."""
    seen: list[tuple[str, str, dict[str, Any]]] = []

    def read_deployment(self: Any, name: str, namespace: str, **kw: Any) -> Response:
        seen.append((name, namespace, kw))
        if name == "gone":
            raise api_exception(404, "NotFound", 'deployments.apps "gone" not found')
        if name == "forbidden":
            raise api_exception(403, "Forbidden", 'deployments.apps "forbidden" is forbidden')
        if name == "slow":
            raise urllib3.exceptions.ReadTimeoutError(None, "/apis", "read timed out")  # type: ignore[arg-type]
        return Response({**READY_DEPLOYMENT, "metadata": {"name": name, "namespace": namespace}})

    monkeypatch.setattr(k8s.AppsV1Api, "read_namespaced_deployment", read_deployment)
    return seen


def reader(**kw: Any) -> RolloutReader:
    return RolloutReader(k8s.ApiClient(), timeout_seconds=7, **kw)


async def test_reads_raw_json_with_one_bounded_get_per_object(calls: list[Any]) -> None:
    r = reader()
    bodies = await r.read([WEB, ObjectKey("ConfigMap", "v1", NS, "cfg")])
    assert list(bodies) == [WEB]  # kinds that never block are not read
    assert bodies[WEB] is not None
    assert bodies[WEB]["status"]["readyReplicas"] == 1
    assert calls == [("web", NS, {"_preload_content": False, "_request_timeout": 7})]
    assert r.calls == 1


async def test_a_missing_object_is_none(calls: list[Any]) -> None:
    assert await reader().get(ObjectKey("Deployment", "apps/v1", NS, "gone")) is None


async def test_other_api_errors_carry_the_api_reason(calls: list[Any]) -> None:
    with pytest.raises(KubeError) as info:
        await reader().get(ObjectKey("Deployment", "apps/v1", NS, "forbidden"))
    assert (info.value.status, info.value.reason) == (403, "Forbidden")
    assert "is forbidden" in info.value.message


async def test_no_answer_is_a_kube_error_with_status_zero(calls: list[Any]) -> None:
    with pytest.raises(KubeError) as info:
        await reader().get(ObjectKey("Deployment", "apps/v1", NS, "slow"))
    assert (info.value.status, info.value.reason) == (0, "Timeout")


async def test_at_most_concurrency_gets_are_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    lock, state = threading.Lock(), {"now": 0, "max": 0}

    def read_deployment(self: Any, name: str, namespace: str, **kw: Any) -> Response:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.02)
        with lock:
            state["now"] -= 1
        return Response(READY_DEPLOYMENT)

    monkeypatch.setattr(k8s.AppsV1Api, "read_namespaced_deployment", read_deployment)
    keys = [ObjectKey("Deployment", "apps/v1", NS, f"d{i}") for i in range(12)]
    r = reader(concurrency=3)
    timing = await measure_check(r, keys)
    assert (timing.objects, timing.api_calls, timing.all_ready) == (12, 12, True)
    assert 1 < state["max"] <= 3


async def test_check_is_one_pass_of_the_gate_and_a_release_with_nothing_to_wait_for_costs_nothing(
    calls: list[Any],
) -> None:
    r = reader()
    assert await r.check([]) == (True, "", "")
    assert r.calls == 0
    keys = [
        WEB,
        ObjectKey("Deployment", "apps/v1", NS, "gone"),
        ObjectKey("Ingress", "networking.k8s.io/v1", NS, "w"),
    ]
    assert await r.check(keys) == (False, "", "deployment/gone not found yet")
    assert r.calls == 2  # a built-in kind without rules is neither read nor waited for


WIDGETS = {
    "kind": "APIResourceList",
    "resources": [
        {"name": "widgets", "kind": "Widget", "namespaced": True},
        {"name": "widgets/status", "kind": "Widget", "namespaced": True},
        {"name": "gadgets", "kind": "Gadget", "namespaced": False},
    ],
}


@pytest.fixture
def custom(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """Discovery of example.com/v1 (Widget namespaced, Gadget cluster-scoped; other groups 404) and Widget
    GETs answered by name: `ready`, `pending` (Ready=False), `secret` (403)."""
    seen: list[tuple[str, ...]] = []

    def resources(self: Any, group: str, version: str, **kw: Any) -> Response:
        seen.append(("discovery", group, version))
        if group != "example.com":
            raise api_exception(404, "NotFound", "the server could not find the requested resource")
        return Response(WIDGETS)

    def get(
        self: Any, group: str, version: str, namespace: str, plural: str, name: str, **kw: Any
    ) -> Response:
        seen.append(("get", plural, namespace, name))
        if name == "secret":
            raise api_exception(403, "Forbidden", f'widgets.example.com "{name}" is forbidden')
        status = "True" if name == "ready" else "False"
        return Response(
            {"metadata": {"name": name}, "status": {"conditions": [{"type": "Ready", "status": status}]}}
        )

    monkeypatch.setattr(k8s.CustomObjectsApi, "get_api_resources", resources)
    monkeypatch.setattr(k8s.CustomObjectsApi, "get_namespaced_custom_object", get)
    return seen


def widget(name: str, kind: str = "Widget", api_version: str = "example.com/v1") -> ObjectKey:
    return ObjectKey(kind, api_version, NS, name)


async def test_custom_resources_are_found_by_discovery_once_and_judged_by_kstatus(custom: list[Any]) -> None:
    r = reader()
    assert await r.check([widget("ready"), widget("pending")]) == (False, "", "widget/pending Ready=False")
    assert await r.check([widget("ready")]) == (True, "", "")
    assert custom.count(("discovery", "example.com", "v1")) == 1  # cached after the first pass
    assert ("get", "widgets", NS, "pending") in custom
    assert r.calls == 4


async def test_custom_resources_the_operator_may_not_read_or_that_are_not_served_namespaced_never_wait(
    custom: list[Any],
) -> None:
    keys = [widget("secret"), widget("g", "Gadget"), widget("x", "Thing", "other.example/v1")]
    assert await reader().read(keys) == {}
    assert await reader().check(keys) == (True, "", "")
    assert ("get", "gadgets", NS, "g") not in custom  # cluster-scoped: never read in a namespace
