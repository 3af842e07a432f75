"""clients/gitops.py: a HelmRelease or Application the operator cannot find or may not read is None (tested
as if no GitOps tool owned it); any other API answer is a KubeError. The typed client is stood in for."""

from __future__ import annotations

from typing import Any

import kubernetes.client as k8s
import pytest
from kubernetes.client.exceptions import ApiException

from helm_e2e.clients.gitops import GitOpsReader
from helm_e2e.core.model import names
from helm_e2e.errors import KubeError


class Custom:
    def __init__(self, answer: Any) -> None:
        self.answer, self.asked = answer, []  # type: ignore[var-annotated]

    def get_namespaced_custom_object(self, *args: Any, **_: Any) -> Any:
        self.asked.append(args)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def reader(answer: Any) -> tuple[GitOpsReader, Custom]:
    r = GitOpsReader(k8s.ApiClient())
    r.custom = custom = Custom(answer)  # type: ignore[assignment]
    return r, custom


async def test_each_object_is_read_from_its_own_api() -> None:
    r, custom = reader({"kind": "X"})
    assert await r.get_helm_release("shop", "web") == {"kind": "X"}
    assert await r.get_application("argocd", "web") == {"kind": "X"}
    assert custom.asked == [
        (names.FLUX_GROUP, names.FLUX_VERSION, "shop", names.FLUX_HELM_RELEASES, "web"),
        (names.ARGOCD_GROUP, names.ARGOCD_VERSION, "argocd", names.ARGOCD_APPLICATIONS, "web"),
    ]


@pytest.mark.parametrize("status", [403, 404])
async def test_what_cannot_be_read_is_none(status: int) -> None:
    r, _ = reader(ApiException(status=status))
    assert await r.get_helm_release("shop", "web") is None
    assert await r.get_application("argocd", "web") is None


async def test_any_other_answer_is_a_kube_error() -> None:
    r, _ = reader(ApiException(status=500, reason="Internal"))
    with pytest.raises(KubeError) as failed:
        await r.get_application("argocd", "web")
    assert failed.value.status == 500
