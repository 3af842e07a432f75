"""clients/kube.py without a cluster: the API's answers as outcomes or project errors, and the watch cache
kept in step with every read and write. The transport (clients/kube_rest.Rest) and the typed client are stood
in for by recorders of our own."""

from __future__ import annotations

import json
from typing import Any

import kubernetes.client as k8s
import pytest
from kubernetes.client.exceptions import ApiException

from helm_e2e.clients.kube import Kube, Patched
from helm_e2e.clients.kube_rest import Request
from helm_e2e.clients.watch_cache import WatchCache
from helm_e2e.core.outcomes.outbox import settled_body
from helm_e2e.errors import KubeError

NS, NAME = "shop", "web-3"


def run(rv: int) -> dict[str, Any]:
    return {
        "metadata": {"namespace": NS, "name": NAME, "resourceVersion": str(rv)},
        "status": {"phase": "Running"},
    }


def refused(status: int) -> ApiException:
    e = ApiException(status=status, reason="Refused")
    e.body = json.dumps({"reason": "Invalid", "message": f"said {status}"})
    return e


class Custom:
    """Stands in for CustomObjectsApi: answers from `answers` (an ApiException is raised); calls kept."""

    def __init__(self, **answers: Any) -> None:
        self.answers, self.calls = answers, []  # type: ignore[var-annotated]

    def __getattr__(self, method: str) -> Any:
        def called(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(method)
            answer = self.answers[method]
            if isinstance(answer, Exception):
                raise answer
            return answer

        return called


class Rest:
    """Stands in for the transport: answers by "<method> <the path's last part>" (an ApiException is raised);
    requests kept."""

    def __init__(self, **answers: Any) -> None:
        keys = (k.split("_", 1) for k in answers)  # GET_web_3: "GET web-3"
        self.answers = {
            f"{m} {last.replace('_', '-')}": v for (m, last), v in zip(keys, answers.values(), strict=True)
        }
        self.calls: list[str] = []

    async def send(self, request: Request) -> Any:
        key = f"{request.method} {request.path.rsplit('/', 1)[-1]}"
        self.calls.append(key)
        answer = self.answers[key]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def close(self) -> None:
        return None


def kube(api: Rest | Custom, *, cache: WatchCache | None = None) -> Kube:
    k = Kube(k8s.ApiClient(), cache=cache, rest=api if isinstance(api, Rest) else None)
    if isinstance(api, Custom):
        k.custom = api  # type: ignore[assignment]
    return k


async def test_a_run_that_exists_already_is_not_an_error_but_other_refusals_are() -> None:
    assert await kube(Rest(POST_e2eruns=refused(409))).create_run(run(1)) is None
    with pytest.raises(KubeError) as failed:
        await kube(Rest(POST_e2eruns=refused(422))).create_run(run(1))
    assert (failed.value.status, failed.value.reason, failed.value.message) == (422, "Invalid", "said 422")


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [(run(2), Patched.APPLIED), (refused(409), Patched.CONFLICT), (refused(404), Patched.GONE)],
)
async def test_a_status_patch_says_applied_conflict_or_gone(answer: Any, outcome: Patched) -> None:
    k = kube(Rest(PATCH_status=answer))
    assert await k.patch_run_status(NS, NAME, {"phase": "Failed"}, resource_version="1") == outcome


async def test_reads_come_from_the_cache_once_a_write_showed_the_run() -> None:
    cache = WatchCache(settled=settled_body)
    rest = Rest(POST_e2eruns=run(1), GET_web_3=run(1))
    k = kube(rest, cache=cache)
    await k.create_run(run(1))
    assert await k.get_run(NS, NAME) == run(1)
    assert rest.calls == ["POST e2eruns"]  # no GET: the create's response is kept


async def test_a_conflicting_write_sends_the_next_read_to_the_api() -> None:
    cache = WatchCache(settled=settled_body)
    cache.saw_run(run(1))
    rest = Rest(PATCH_status=refused(409), GET_web_3=run(5))
    k = kube(rest, cache=cache)
    assert await k.patch_run_status(NS, NAME, {}, resource_version="1") == Patched.CONFLICT
    assert await k.get_run(NS, NAME) == run(5)
    assert rest.calls[-1] == "GET web-3"


async def test_a_run_gone_from_the_api_is_none_and_a_refused_read_an_error() -> None:
    assert await kube(Rest(GET_web_3=refused(404))).get_run(NS, NAME) is None
    with pytest.raises(KubeError):
        await kube(Rest(GET_web_3=refused(403))).get_run(NS, NAME)


async def test_suites_without_their_crd_are_none_and_a_delete_of_nothing_is_fine() -> None:
    assert await kube(Custom(list_namespaced_custom_object=refused(404))).list_suites(NS) == []
    await kube(Rest(DELETE_web_3=refused(404))).delete_run(NS, NAME)  # no exception
