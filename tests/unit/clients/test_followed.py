"""A namespace's suites and test accounts are served from the watches only once a LIST primed them, never
older than what the events said (deletions and label removals included), and listed again when nothing
confirmed them for a minute."""

from __future__ import annotations

from typing import Any

from fake_kube import Ticks
from hypothesis import example, given, settings
from hypothesis import strategies as st

from helm_e2e.clients.followed import Followed
from helm_e2e.clients.watch_cache import WatchCache
from helm_e2e.core.outcomes.outbox import settled_body

NS = "shop"


def obj(name: str, rv: int, namespace: str = NS, **spec: Any) -> dict[str, Any]:
    meta = {"namespace": namespace, "name": name, "resourceVersion": str(rv), "managedFields": [{"m": 1}]}
    return {"metadata": meta, "spec": spec}


def served(index: Followed, key: str = NS) -> dict[str, int] | None:
    group = index.get(key)
    return (
        None
        if group is None
        else {b["metadata"]["name"]: int(b["metadata"]["resourceVersion"]) for b in group}
    )


def test_a_namespace_is_listed_until_a_list_primed_it_and_events_before_that_are_not_kept() -> None:
    cache = WatchCache(settled=settled_body)
    cache.saw_suite(obj("api", 5))  # nobody follows the namespace yet: the LIST will say it
    assert served(cache.suites) is None
    assert cache.suites.start_priming(NS)
    assert served(cache.suites) is None  # while the LIST is in flight
    cache.suites.primed(NS, [obj("api", 5), obj("ui", 6)], "10")
    assert served(cache.suites) == {"api": 5, "ui": 6}
    assert "managedFields" not in cache.suites.get(NS)[0]["metadata"]  # type: ignore[index]


def test_events_keep_a_primed_namespace_current_and_other_namespaces_apart() -> None:
    cache = WatchCache(settled=settled_body)
    cache.suites.start_priming(NS)
    cache.suites.primed(NS, [obj("api", 5)], "10")
    cache.saw_suite(obj("api", 12, image="v2"))
    cache.saw_suite(obj("new", 13))
    cache.saw_suite(obj("other", 14, namespace="billing"))
    cache.saw_suite(obj("api", 11))  # a late, older event
    assert served(cache.suites) == {"api": 12, "new": 13}
    assert cache.suites.get(NS)[0]["spec"] == {"image": "v2"}  # type: ignore[index]
    cache.saw_suite(obj("api", 15), deleted=True)
    assert served(cache.suites) == {"new": 13}
    assert served(cache.suites, "billing") is None


def test_a_deletion_that_raced_the_list_is_not_brought_back_by_it() -> None:
    cache = WatchCache(settled=settled_body)
    cache.suites.start_priming(NS)
    cache.saw_suite(obj("old", 9), deleted=True)  # deleted after the LIST's snapshot was taken
    cache.saw_suite(obj("new", 12))  # created after it
    cache.suites.primed(NS, [obj("old", 4), obj("api", 5)], "8")
    assert served(cache.suites) == {"api": 5, "new": 12}


def test_concurrent_primings_of_one_namespace_both_merge_and_deletions_hold_until_the_last() -> None:
    cache = WatchCache(settled=settled_body)
    cache.suites.start_priming(NS)
    cache.suites.start_priming(NS)  # two releases of the namespace planned at once
    cache.saw_suite(obj("old", 9), deleted=True)
    cache.suites.primed(NS, [obj("api", 5)], "9")
    assert served(cache.suites) == {"api": 5}
    cache.suites.primed(NS, [obj("old", 4), obj("api", 5)], "7")  # the slower LIST, older snapshot
    assert served(cache.suites) == {"api": 5}


def test_a_label_removed_is_a_deleted_event_and_the_account_stops_being_a_test_account() -> None:
    cache = WatchCache(settled=settled_body)
    cache.accounts.start_priming(NS)
    cache.accounts.primed(NS, [obj("tester", 3)], "5")
    assert served(cache.accounts) == {"tester": 3}
    assert cache.accounts.get(NS)[0] == {  # type: ignore[index]
        "metadata": {"namespace": NS, "name": "tester", "resourceVersion": "3"}
    }
    cache.saw_account(obj("tester", 7), deleted=True)
    assert served(cache.accounts) == {}
    cache.saw_account(obj("tester", 8))  # labelled again
    assert served(cache.accounts) == {"tester": 8}


def test_a_namespace_nothing_confirmed_for_the_max_age_is_listed_again_and_the_list_drops_what_went() -> None:
    ticks = Ticks()
    index = Followed(max_age=60, clock=ticks)
    index.start_priming(NS)
    index.primed(NS, [obj("api", 5), obj("gone", 6)], "10")
    ticks.now += 61  # a watch restarted from a fresh listing reports no deletion in between
    assert served(index) is None
    index.start_priming(NS)
    index.primed(NS, [obj("api", 5)], "20")
    assert served(index) == {"api": 5}
    ticks.now += 39
    index.saw(NS, obj("api", 21))  # an event confirms the group as well
    ticks.now += 50
    assert served(index) == {"api": 21}


def test_a_failed_first_list_leaves_the_namespace_unfollowed_a_failed_relist_keeps_it() -> None:
    index = Followed(max_age=60, clock=Ticks())
    index.start_priming(NS)
    index.abandon_priming(NS)
    assert not index.follows(NS)
    index.saw(NS, obj("api", 5))
    assert served(index) is None
    index.start_priming(NS)
    index.primed(NS, [obj("api", 5)], "10")
    index.start_priming(NS)
    index.abandon_priming(NS)
    assert served(index) == {"api": 5}


def test_versions_that_are_not_numbers_are_never_kept() -> None:
    index = Followed(max_age=60)
    index.start_priming(NS)
    index.primed(NS, [obj("api", 5)], "not-a-number")
    assert served(index) is None
    assert not index.follows(NS)
    index.start_priming(NS)
    index.primed(NS, [{"metadata": {"name": "api", "resourceVersion": "x"}}], "10")
    assert served(index) is None
    index.start_priming(NS)
    index.primed(NS, [obj("api", 5)], "10")
    index.saw(NS, {"metadata": {"name": "api", "resourceVersion": "abc"}})
    assert served(index) is None


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(1, 40), st.booleans()),
        min_size=1,
        max_size=12,
    ),
    st.integers(0, 12),
    st.integers(0, 12),
    st.integers(0, 12),
)
@example([("a", 1, False), ("a", 3, True)], 0, 1, 2)  # deleted after the snapshot, before the merge
@settings(max_examples=500)
def test_whatever_races_the_list_the_group_ends_as_the_newest_observation_of_each_says(
    history: list[tuple[str, int, bool]], start: int, snapshot_at: int, delivered: int
) -> None:
    """Observations (name, version, deleted), delivered in order by the watch. The group is followed from
    the `start`-th (earlier events are dropped), the LIST is a snapshot after the `snapshot_at`-th and is
    merged once the watch delivered `delivered` of them (behind or ahead of the LIST): once the watch
    delivered everything, the group is what the newest observation of each name says."""
    seen: dict[int, tuple[str, bool]] = {}
    for name, rv, deleted in history:
        seen.setdefault(rv, (name, deleted))
    ordered = sorted(seen.items())
    start, snapshot_at = min(start, len(ordered)), min(max(snapshot_at, start), len(ordered))
    delivered = min(max(delivered, start), len(ordered))

    def state(upto: int) -> dict[str, int]:
        out: dict[str, int] = {}
        for rv, (name, deleted) in ordered[:upto]:
            out.pop(name, None) if deleted else out.__setitem__(name, rv)
        return out

    at = ordered[snapshot_at - 1][0] if snapshot_at else 0
    index = Followed(max_age=60)
    index.start_priming(NS)
    for rv, (name, deleted) in ordered[start:delivered]:
        index.saw(NS, obj(name, rv), deleted=deleted)
    index.primed(NS, [obj(n, rv) for n, rv in state(snapshot_at).items()], str(at))
    for rv, (name, deleted) in ordered[delivered:]:
        index.saw(NS, obj(name, rv), deleted=deleted)
    assert served(index) == state(len(ordered))
