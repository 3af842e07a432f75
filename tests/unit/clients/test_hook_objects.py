"""clients/hook_objects.py without a cluster: ownership checks, API refusals, and the 409 decisions of create."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from helm_e2e.clients.apierror import api_refusal
from helm_e2e.clients.hook_objects import HookObjects, is_ours, same_run
from helm_e2e.errors import ApiRefused, NameTaken


def labelled(**labels: str) -> dict[str, Any]:
    return {
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "shop", "uid": "u1", "labels": labels},
    }


OURS = {
    "app.kubernetes.io/managed-by": "helm-e2e",
    "helm-e2e.dev/release": "web",
    "helm-e2e.dev/run": "web-2",
}
WANTED = labelled(**{**OURS, "helm-e2e.dev/run": "web-3"})


@pytest.mark.parametrize(
    ("existing", "ours", "same"),
    [
        (labelled(**OURS), True, False),
        (labelled(**{**OURS, "helm-e2e.dev/run": "web-3"}), True, True),
        (labelled(**{**OURS, "helm-e2e.dev/release": "api"}), False, False),
        (labelled(**{**OURS, "app.kubernetes.io/managed-by": "Helm"}), False, False),
        ({"metadata": {}}, False, False),
    ],
)
def test_an_object_is_ours_when_managed_by_helm_e2e_for_the_same_release(
    existing: dict[str, Any], ours: bool, same: bool
) -> None:
    assert is_ours(existing, WANTED) is ours
    assert same_run(existing, WANTED) is same


class Answer:
    """What the generated client returns with `_preload_content=False`: urllib3's answer, not read yet."""

    def __init__(self, data: bytes) -> None:
        self._body = io.BytesIO(data)

    def read(self, amt: int) -> bytes:
        return self._body.read(amt)

    def release_conn(self) -> None:
        return None

    def close(self) -> None:
        return None


class FakeApi:
    """Just enough of the typed client: one ConfigMap store, calls recorded."""

    def __init__(self, existing: dict[str, Any] | None, create_status: int = 409) -> None:
        self.existing, self.create_status = existing, create_status
        self.calls: list[str] = []

    def create_namespaced_config_map(self, namespace: str, body: dict[str, Any], **_: Any) -> Any:
        self.calls.append("create")
        if self.existing is not None or self.create_status != 409:
            raise ApiException(status=self.create_status, reason="x")
        self.existing = {**body, "metadata": {**body["metadata"], "uid": "u-new"}}
        return Answer(json.dumps(self.existing).encode())

    def read_namespaced_config_map(self, name: str, namespace: str, **_: Any) -> Any:
        if self.existing is None:
            raise ApiException(status=404, reason="NotFound")
        data = json.dumps(self.existing).encode()
        return Answer(data)

    def delete_namespaced_config_map(self, name: str, namespace: str, **_: Any) -> None:
        self.calls.append("delete")
        self.existing = None

    def patch_namespaced_config_map(self, name: str, namespace: str, body: dict[str, Any], **kw: Any) -> Any:
        """A server-side apply of an absent object: the API creates it."""
        self.calls.append("apply")
        self.apply_options = {k: v for k, v in kw.items() if not k.startswith("_preload")}
        self.existing = {**body, "metadata": {**body["metadata"], "uid": "u-applied"}}
        return Answer(json.dumps(self.existing).encode())


def hook_objects(api: FakeApi) -> HookObjects:
    store = HookObjects.__new__(HookObjects)
    store._verbs = {
        "ConfigMap": (
            api.create_namespaced_config_map,
            api.read_namespaced_config_map,
            api.delete_namespaced_config_map,
            api.patch_namespaced_config_map,
        )
    }
    store.timeout = 5.0
    return store


async def test_an_earlier_runs_object_is_replaced_under_before_hook_creation() -> None:
    api = FakeApi(labelled(**OURS))
    assert await hook_objects(api).create(WANTED, replace_ours=True) == "u-new"  # the new object's uid
    assert api.calls == ["create", "delete", "create"]
    assert api.existing == {**WANTED, "metadata": {**WANTED["metadata"], "uid": "u-new"}}


async def test_a_created_object_answers_with_its_uid() -> None:
    api = FakeApi(None)
    assert await hook_objects(api).create(WANTED, replace_ours=True) == "u-new"
    assert api.calls == ["create"]


async def test_an_object_of_the_same_run_is_adopted() -> None:
    api = FakeApi(labelled(**{**OURS, "helm-e2e.dev/run": "web-3"}))
    assert await hook_objects(api).create(WANTED, replace_ours=True) == "u1"  # the adopted object's uid
    assert api.calls == ["create"]


@pytest.mark.parametrize(
    ("existing", "replace", "why"),
    [
        (labelled(**{"app.kubernetes.io/managed-by": "Helm"}), True, "did not create"),
        (labelled(**OURS), False, "no before-hook-creation"),
    ],
)
async def test_a_name_held_by_another_object_is_name_taken(
    existing: dict[str, Any], replace: bool, why: str
) -> None:
    api = FakeApi(existing)
    with pytest.raises(NameTaken, match=why):
        await hook_objects(api).create(WANTED, replace_ours=replace)
    assert "delete" not in api.calls


async def test_an_api_refusal_carries_the_apis_reason_and_message() -> None:
    api = FakeApi(None, create_status=403)
    error = ApiException(status=403, reason="Forbidden")
    error.body = json.dumps({"kind": "Status", "reason": "Forbidden", "message": "configmaps is forbidden"})
    refused = api_refusal(error)
    assert (refused.status, refused.reason, refused.message) == (403, "Forbidden", "configmaps is forbidden")
    with pytest.raises(ApiRefused) as caught:
        await hook_objects(api).create(WANTED, replace_ours=True)
    assert caught.value.status == 403


async def test_a_kind_we_do_not_create_is_refused_before_any_call() -> None:
    with pytest.raises(ApiRefused, match="kind ClusterRole is not created") as caught:
        await hook_objects(FakeApi(None)).create({**WANTED, "kind": "ClusterRole"}, replace_ours=True)
    assert caught.value.reason == "KindNotSupported"


async def test_a_release_applied_server_side_gets_its_hook_objects_applied_as_helm_4_does() -> None:
    api = FakeApi(None)
    assert await hook_objects(api).create(WANTED, replace_ours=True, server_side=True) == "u-applied"
    assert api.calls == ["apply"]
    assert api.apply_options == {
        "field_manager": "helm",  # Helm 4's field manager
        "force": False,  # conflicts are not forced
        "field_validation": "Strict",
        "_content_type": "application/apply-patch+yaml",
        "_request_timeout": 5.0,
    }


async def test_a_server_side_apply_never_lands_on_someone_elses_object() -> None:
    api = FakeApi(labelled())  # a foreign object holds the name: it is looked at first, never applied onto
    with pytest.raises(NameTaken):
        await hook_objects(api).create(WANTED, replace_ours=True, server_side=True)
    assert api.calls == []
    ours = FakeApi(labelled(**OURS))  # an earlier run's, under before-hook-creation: deleted, then applied
    assert await hook_objects(ours).create(WANTED, replace_ours=True, server_side=True) == "u-applied"
    assert ours.calls == ["delete", "apply"]
