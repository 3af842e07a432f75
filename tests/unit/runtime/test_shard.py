"""A shard's namespaces: which events of the label-selected namespace watch change the set kopf serves."""

from __future__ import annotations

import pytest

from helm_e2e.runtime.shard import decide_changed

MEMBERS = frozenset({"shop", "payments"})


@pytest.mark.parametrize(
    ("event", "name", "changed"),
    [
        ("ADDED", "shop", False),  # the initial state replayed: already served
        ("MODIFIED", "payments", False),  # another label or an annotation changed
        ("ADDED", "search", True),  # a new namespace with the label, or the label added
        ("MODIFIED", "search", True),
        ("DELETED", "shop", True),  # the label removed (a selected watch says DELETED) or the namespace gone
        ("DELETED", "search", False),  # never served
    ],
)
def test_only_a_namespace_joining_or_leaving_changes_the_shard(event: str, name: str, changed: bool) -> None:
    assert decide_changed(MEMBERS, event, name) is changed
