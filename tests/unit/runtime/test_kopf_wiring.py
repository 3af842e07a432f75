"""kopf keeps no per-object memory of Helm release Secrets (55,000 of them were 52 MiB, for good), and still
keeps it for everything else (our runs, pods and suites: kopf's own bookkeeping stays as it was)."""

from __future__ import annotations

import kopf
from kopf._core.reactor.inventory import ResourceMemories

from helm_e2e.core.model import names
from helm_e2e.runtime.kopf_wiring import NoDiffBase, keep_no_kopf_memory_of_helm_secrets


def secret(uid: str, type_: str = names.HELM_SECRET_TYPE) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "type": type_, "metadata": {"uid": uid, "name": uid}}


async def test_helm_secrets_are_recalled_without_being_remembered() -> None:
    assert keep_no_kopf_memory_of_helm_secrets()  # kopf's recall still has the shape this relies on
    assert keep_no_kopf_memory_of_helm_secrets()  # and wrapping twice changes nothing
    memories = ResourceMemories()
    for i in range(100):
        memory = await memories.recall(secret(f"s{i}"), noticed_by_listing=True)
        assert memory.noticed_by_listing  # a usable memory for this event
    assert list(memories.iter_all_memories()) == []


async def test_other_objects_are_remembered_as_before() -> None:
    keep_no_kopf_memory_of_helm_secrets()
    memories = ResourceMemories()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"uid": "p1", "name": "p1"}}
    first = await memories.recall(pod)
    assert await memories.recall(pod) is first
    await memories.recall(secret("t1", type_="Opaque"))
    assert len(list(memories.iter_all_memories())) == 2


def test_no_diff_base_gives_kopf_no_essence_to_copy_or_diff() -> None:
    body = kopf.Body({"metadata": {"name": "web-2", "annotations": {"a": "b"}}, "spec": {"x": [1, 2]}})
    storage = NoDiffBase()
    assert storage.build(body=body) == {}  # not a deep copy of the body
    assert storage.fetch(body=body) is None
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    assert not patch  # nothing written to the object either
