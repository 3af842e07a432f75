"""The watch cache never serves a run or pod older than what the process already saw (a stale run could send a
report twice), keeps only active runs, and merges a priming LIST with the events that raced it."""

from __future__ import annotations

from typing import Any

from fake_kube import Ticks
from hypothesis import given
from hypothesis import strategies as st

from helm_e2e.clients.watch_cache import WatchCache, slim_pod
from helm_e2e.core.model import names
from helm_e2e.core.outcomes.outbox import settled_body

KEY = ("ns", "app-3")


def run(rv: int, phase: str = "Running", name: str = "app-3", *, mailed: bool = True) -> dict[str, Any]:
    """A run; a final one has its report's outcome (EmailSent) unless `mailed=False`."""
    final = phase in ("Succeeded", "Failed", "Error", "NoTests", "Cancelled", "Superseded")
    conditions = (
        [{"type": names.COND_EMAIL_SENT, "status": "True", "reason": "Sent"}] if final and mailed else []
    )
    return {
        "metadata": {"namespace": "ns", "name": name, "resourceVersion": str(rv)},
        "spec": {},
        "status": {"phase": phase, "conditions": conditions},
    }


def pod(name: str, rv: int, phase: str = "Running", run_name: str = "app-3") -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "ns",
            "name": name,
            "resourceVersion": str(rv),
            "labels": {names.RUN_LABEL: run_name},
            "managedFields": [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}],
        },
        "spec": {
            "nodeName": "kwok-node",
            "containers": [{"name": "test", "image": "busybox", "env": [{"name": "X", "value": "y"}]}],
            "initContainers": [{"name": "collector", "image": "op", "restartPolicy": "Always"}],
            "volumes": [{"name": "artifacts", "emptyDir": {}}],
        },
        "status": {"phase": phase},
    }


def primed(cache: WatchCache, *pods: dict[str, Any], at: int = 100) -> None:
    assert cache.run_pods.start_priming(KEY)
    cache.run_pods.primed(KEY, list(pods), str(at))


# --- runs ------------------------------------------------------------------------------------------------


def test_an_unknown_run_is_a_miss() -> None:
    assert WatchCache(settled=settled_body).run(KEY) is None


def test_the_newest_run_seen_is_served() -> None:
    cache = WatchCache(settled=settled_body)
    cache.saw_run(run(5))
    cache.saw_run(run(7))
    assert cache.run(KEY) == run(7)


def test_an_older_event_arriving_after_a_write_response_is_ignored() -> None:
    cache = WatchCache(settled=settled_body)
    cache.saw_run(run(9))  # our patch's response ("Sent" recorded)
    cache.saw_run(run(8))  # the event of an earlier write, still in flight
    assert cache.run(KEY) == run(9)


def test_after_a_conflict_the_run_is_read_from_the_api_until_something_newer_arrives() -> None:
    cache = WatchCache(settled=settled_body)
    cache.saw_run(run(5))
    cache.forget_run(KEY)
    assert cache.run(KEY) is None
    cache.saw_run(run(5))  # the same stale version again (a late event): served, it is the newest known
    assert cache.run(KEY) == run(5)
    cache.saw_run(run(6))
    assert cache.run(KEY) == run(6)


def test_a_final_run_is_followed_until_its_report_is_written() -> None:
    cache = WatchCache(settled=settled_body, keep_settled=0)
    cache.saw_run(run(5))
    primed(cache, pod("p", 4))
    cache.saw_run(run(6, phase="Failed", mailed=False))
    assert cache.run(KEY) == run(6, phase="Failed", mailed=False)
    assert cache.run_pods.get(KEY) is not None
    cache.saw_run(run(7, phase="Failed"))
    assert cache.run(KEY) is None
    assert cache.run_pods.get(KEY) is None


def test_beyond_the_settled_runs_kept_a_settled_run_is_dropped_and_no_older_version_comes_back() -> None:
    cache = WatchCache(settled=settled_body, keep_settled=0)
    cache.saw_run(run(5))
    cache.saw_run(run(6, phase="Succeeded"))
    assert cache.run(KEY) is None
    cache.saw_run(run(5))  # the Running event, late
    assert cache.run(KEY) is None


def test_a_version_that_is_not_a_number_is_never_cached() -> None:
    cache = WatchCache(settled=settled_body)
    cache.saw_run(run(5))
    odd = run(5)
    odd["metadata"]["resourceVersion"] = "abc"
    cache.saw_run(odd)
    assert cache.run(KEY) is None


def test_a_deleted_run_is_forgotten_with_its_pods() -> None:
    cache = WatchCache(settled=settled_body)
    cache.saw_run(run(5))
    primed(cache, pod("p", 4))
    cache.deleted_run(KEY)
    assert cache.run(KEY) is None
    assert cache.run_pods.get(KEY) is None


@given(st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=30))
def test_whatever_the_order_of_observations_the_served_run_is_the_newest(versions: list[int]) -> None:
    cache = WatchCache(settled=settled_body)
    for v in versions:
        cache.saw_run(run(v))
    served = cache.run(KEY)
    assert served is not None
    assert served["metadata"]["resourceVersion"] == str(max(versions))


# --- pods ------------------------------------------------------------------------------------------------


def test_pods_of_a_run_not_primed_are_a_miss() -> None:
    cache = WatchCache(settled=settled_body)
    cache.saw_run(run(5))
    cache.saw_pod(pod("p", 6))  # an event before the priming: not followed yet
    assert cache.run_pods.get(KEY) is None


def test_pods_are_not_followed_for_a_run_that_is_not_active() -> None:
    cache = WatchCache(settled=settled_body, keep_settled=0)
    assert not cache.run_pods.start_priming(KEY)  # unknown run
    cache.saw_run(run(5, phase="Failed"))
    assert not cache.run_pods.start_priming(KEY)


def test_after_priming_events_keep_the_pods_current() -> None:
    cache = WatchCache(settled=settled_body)
    cache.saw_run(run(5))
    primed(cache, pod("p1", 50))
    cache.saw_pod(pod("p1", 101, phase="Succeeded"))
    cache.saw_pod(pod("p2", 102))
    cache.saw_pod(pod("p1", 90, phase="Running"))  # older: ignored
    by_name = {p["metadata"]["name"]: p["status"]["phase"] for p in cache.run_pods.get(KEY) or []}
    assert by_name == {"p1": "Succeeded", "p2": "Running"}
    cache.saw_pod(pod("p2", 103), deleted=True)
    assert [p["metadata"]["name"] for p in cache.run_pods.get(KEY) or []] == ["p1"]


def test_a_pod_deleted_while_the_priming_list_was_in_flight_stays_deleted() -> None:
    cache = WatchCache(settled=settled_body)
    cache.saw_run(run(5))
    assert cache.run_pods.start_priming(KEY)
    assert cache.run_pods.get(KEY) is None  # not served while priming
    cache.saw_pod(pod("p1", 120), deleted=True)
    cache.saw_pod(pod("p2", 121))  # created after the LIST's version
    cache.run_pods.primed(KEY, [pod("p1", 90), pod("p3", 95)], "110")
    assert sorted(p["metadata"]["name"] for p in cache.run_pods.get(KEY) or []) == ["p2", "p3"]


def test_a_newer_event_than_the_listed_pod_wins() -> None:
    cache = WatchCache(settled=settled_body)
    cache.saw_run(run(5))
    assert cache.run_pods.start_priming(KEY)
    cache.saw_pod(pod("p1", 130, phase="Succeeded"))
    cache.run_pods.primed(KEY, [pod("p1", 90, phase="Running")], "110")
    assert [p["status"]["phase"] for p in cache.run_pods.get(KEY) or []] == ["Succeeded"]


def test_a_failed_priming_leaves_the_pods_unfollowed() -> None:
    cache = WatchCache(settled=settled_body)
    cache.saw_run(run(5))
    assert cache.run_pods.start_priming(KEY)
    cache.run_pods.abandon_priming(KEY)
    cache.saw_pod(pod("p", 6))
    assert cache.run_pods.get(KEY) is None


def test_a_run_that_ends_stops_following_its_pods() -> None:
    cache = WatchCache(settled=settled_body, keep_settled=0)
    cache.saw_run(run(5))
    primed(cache, pod("p", 4))
    cache.saw_run(run(8, phase="Succeeded"))
    assert cache.run_pods.get(KEY) is None
    cache.saw_pod(pod("p", 9))
    assert cache.run_pods.get(KEY) is None


def test_a_created_pod_is_seen_before_its_event() -> None:
    cache = WatchCache(settled=settled_body)
    cache.saw_run(run(5))
    primed(cache)
    cache.saw_pod(pod("p", 140, phase="Pending"))  # the create's response
    assert [p["metadata"]["name"] for p in cache.run_pods.get(KEY) or []] == ["p"]


def test_other_runs_pods_are_not_mixed_in() -> None:
    cache = WatchCache(settled=settled_body)
    cache.saw_run(run(5))
    primed(cache)
    cache.saw_pod(pod("other", 141, run_name="app-4"))
    assert cache.run_pods.get(KEY) == []


def test_a_slim_pod_keeps_what_the_core_reads_and_drops_the_rest() -> None:
    slim = slim_pod(pod("p", 4, phase="Failed"))
    assert "managedFields" not in slim["metadata"]
    assert slim["metadata"]["labels"] == {names.RUN_LABEL: "app-3"}
    assert slim["status"] == {"phase": "Failed"}
    assert slim["spec"] == {
        "nodeName": "kwok-node",
        "containers": [{"name": "test", "image": "busybox"}],
        "initContainers": [{"name": "collector", "image": "op", "restartPolicy": "Always"}],
    }


# --- a watch that died without an error -------------------------------------------------------------------


def test_an_entry_nothing_confirmed_for_a_minute_is_read_again() -> None:
    ticks = Ticks()
    cache = WatchCache(settled=settled_body, max_age=60, clock=ticks)
    cache.saw_run(run(5))
    primed(cache, pod("p", 4))
    ticks.now += 59
    assert cache.run(KEY) is not None
    assert cache.run_pods.get(KEY) is not None
    ticks.now += 2  # no event, no read for 61 s: the watch may be dead
    assert cache.run(KEY) is None
    assert cache.run_pods.get(KEY) is None


def test_events_keep_an_entry_confirmed() -> None:
    ticks = Ticks()
    cache = WatchCache(settled=settled_body, max_age=60, clock=ticks)
    cache.saw_run(run(5))
    primed(cache, pod("p", 4))
    for rv in range(10, 14):
        ticks.now += 50
        cache.saw_run(run(rv))
        cache.saw_pod(pod("p", rv + 100))
    assert cache.run(KEY) == run(13)
    assert [p["metadata"]["resourceVersion"] for p in cache.run_pods.get(KEY) or []] == ["113"]


def test_stale_pods_are_primed_again_and_merged() -> None:
    ticks = Ticks()
    cache = WatchCache(settled=settled_body, max_age=60, clock=ticks)
    cache.saw_run(run(5))
    primed(cache, pod("p1", 4), pod("p2", 6))
    ticks.now += 61
    cache.saw_run(run(7))
    assert cache.run_pods.get(KEY) is None
    assert cache.run_pods.start_priming(KEY)
    cache.run_pods.primed(KEY, [pod("p1", 150, phase="Succeeded")], "160")  # p2 went while nothing was heard
    assert [(p["metadata"]["name"], p["status"]["phase"]) for p in cache.run_pods.get(KEY) or []] == [
        ("p1", "Succeeded")
    ]


def test_a_kept_run_has_no_managed_fields() -> None:
    """Every status write adds to a run's managedFields (KiBs per run, never read): not kept."""
    cache = WatchCache(settled=settled_body)
    body = run(7)
    body["metadata"]["managedFields"] = [{"manager": "helm-e2e", "fieldsV1": {"f:status": {}}}]
    cache.saw_run(body)
    kept = cache.run(KEY)
    assert kept is not None
    assert "managedFields" not in kept["metadata"]
    assert kept["metadata"]["resourceVersion"] == "7"


def test_a_run_is_settled_when_every_outbox_channel_is_done() -> None:
    """The predicate the cache is given (core.outcomes.outbox.settled_body): the e-mail's channel and every
    webhook's done; a run from before the one outbox (EmailSent only) is read the same way (`run` above)."""
    cache = WatchCache(settled=settled_body, keep_settled=0)
    mail = {"target": names.MAIL_CHANNEL, "state": "Skipped", "reason": "NoRecipients"}
    pending = run(5, "Failed", mailed=False)
    pending["status"]["notifications"] = [mail, {"target": "ops", "state": "Sending"}]
    cache.saw_run(pending)
    assert cache.run(KEY) is not None  # a webhook is still in flight: followed
    done = run(6, "Failed", mailed=False)
    done["status"]["notifications"] = [mail, {"target": "ops", "state": "Failed"}]
    cache.saw_run(done)
    assert cache.run(KEY) is None


def test_the_cache_asks_the_predicate_it_was_given() -> None:
    cache = WatchCache(settled=lambda body: body["metadata"]["name"] == "done", keep_settled=0)
    cache.saw_run(run(1, "Running", name="done"))
    cache.saw_run(run(2, "Failed"))
    assert cache.run(("ns", "done")) is None
    assert cache.run(KEY) is not None


def test_a_run_this_process_created_follows_its_pods_without_a_list() -> None:
    cache = WatchCache(settled=settled_body)
    cache.creating_run(KEY)
    # the run's ADDED event can wake a pass before the create's response is read: no LIST then either
    cache.saw_run(run(5))
    assert cache.run_pods.get(KEY) == []
    cache.created_run(run(5))
    assert cache.run_pods.get(KEY) == []  # no pods yet: nothing to list
    cache.saw_pod(pod("app-3-a", 7))
    assert [p["metadata"]["name"] for p in cache.run_pods.get(KEY) or []] == ["app-3-a"]


def test_a_run_whose_create_failed_or_existed_lists_its_pods_first() -> None:
    cache = WatchCache(settled=settled_body)
    cache.creating_run(KEY)
    cache.not_created(KEY)  # 409: made by an earlier process, which may have created its pods
    assert cache.run_pods.get(KEY) is None


def test_a_run_seen_elsewhere_still_lists_its_pods_first() -> None:
    cache = WatchCache(settled=settled_body)
    cache.saw_run(run(5))  # an event after a restart: it may have pods already
    assert cache.run_pods.get(KEY) is None


def test_a_settled_runs_own_write_coming_back_is_no_news_but_anything_newer_is() -> None:
    cache = WatchCache(settled=settled_body)
    cache.saw_run(run(5))
    assert not cache.news(run(5))  # in flight, its own write's response seen: the writer requeued itself
    assert cache.news(run(6))  # in flight, a newer version: another writer's change wakes a pass
    cache.saw_run(run(6, phase="Succeeded"))  # the report's outcome written: settled, not kept
    assert not cache.news(run(6, phase="Succeeded"))
    assert not cache.news(run(5))  # a late older event
    assert cache.news(run(7, phase="Succeeded"))  # someone else's write (an annotation, a rerun)


def test_after_a_restart_every_run_event_is_news() -> None:
    assert WatchCache(settled=settled_body).news(run(6, phase="Succeeded"))


def test_a_settled_run_and_its_pods_are_kept_for_its_last_pass_until_newer_ones_push_it_out() -> None:
    cache = WatchCache(settled=settled_body, keep_settled=1)
    cache.saw_run(run(5))
    primed(cache, pod("p", 4))
    cache.saw_run(run(6, phase="Succeeded"))  # the report's outcome: settled
    assert cache.run(KEY) == run(6, phase="Succeeded")  # the pass this write sets off reads nothing
    assert cache.run_pods.get(KEY) is not None
    assert not cache.news(run(6, phase="Succeeded"))  # and its own write coming back wakes none
    cache.saw_run(run(9, phase="Succeeded", name="app-4"))  # another run settles: the oldest goes
    assert cache.run(KEY) is None
    assert cache.run_pods.get(KEY) is None
    cache.saw_run(run(5))  # a late event of the first: never served again
    assert cache.run(KEY) is None


def test_a_pod_event_wakes_its_run_only_when_it_brings_something_new() -> None:
    cache = WatchCache(settled=settled_body)
    cache.creating_run(KEY)  # followed as empty: this process creates it
    cache.saw_run(run(5))
    assert cache.saw_pod(pod("p", 7, phase="Pending"))  # the create's response
    assert not cache.saw_pod(pod("p", 7, phase="Pending"))  # ...coming back as ADDED: nothing new
    assert cache.saw_pod(pod("p", 8))  # Running
    assert not cache.saw_pod(pod("p", 7, phase="Pending"))  # a late older event
    assert cache.saw_pod(pod("p", 9, phase="Succeeded"), deleted=True)
    assert cache.saw_pod(pod("q", 3, run_name="app-9"))  # a run not followed: its pass lists, so wake it
    assert not cache.saw_pod({"metadata": {"name": "x", "namespace": "ns", "resourceVersion": "4"}})  # no run


def test_a_pod_event_that_changes_nothing_a_decision_reads_wakes_no_pass() -> None:
    cache = WatchCache(settled=settled_body)
    cache.creating_run(KEY)
    cache.saw_run(run(5))
    assert cache.saw_pod(pod("p", 7, phase="Pending"))
    bound = pod("p", 8, phase="Pending")
    bound["spec"]["nodeName"] = "node-2"  # the scheduler's binding: the status is the same
    assert not cache.saw_pod(bound)
    kept = cache.run_pods.get(KEY)
    assert kept is not None
    assert kept[0]["spec"]["nodeName"] == "node-2"  # kept all the same
    deleting = pod("p", 9, phase="Pending")
    deleting["metadata"]["deletionTimestamp"] = "2026-11-25T10:00:00Z"
    assert cache.saw_pod(deleting)  # its deletion is read
    assert cache.saw_pod(pod("p", 10, phase="Running"))  # its status is read


def with_status(name: str, rv: int, **status: Any) -> dict[str, Any]:
    body = pod(name, rv)
    body["status"] = status
    return body


def test_the_schedulers_condition_and_a_container_being_created_wake_no_pass_its_steps_do() -> None:
    cache = WatchCache(settled=settled_body)
    cache.creating_run(KEY)
    cache.saw_run(run(5))
    assert cache.saw_pod(with_status("p", 7, phase="Pending"))
    scheduled = [{"type": "PodScheduled", "status": "True"}]
    assert not cache.saw_pod(with_status("p", 8, phase="Pending", conditions=scheduled))
    creating = [{"name": "test", "state": {"waiting": {"reason": "ContainerCreating"}}, "restartCount": 0}]
    assert not cache.saw_pod(
        with_status(
            "p", 9, phase="Pending", conditions=scheduled, containerStatuses=creating, hostIP="10.0.0.1"
        )
    )
    kept = cache.run_pods.get(KEY)
    assert kept is not None
    assert kept[0]["status"]["hostIP"] == "10.0.0.1"  # kept all the same
    never = [{"name": "test", "state": {"waiting": {"reason": "InvalidImageName"}}}]
    assert cache.saw_pod(with_status("p", 10, phase="Pending", containerStatuses=never))  # it can never start


def test_a_container_that_ends_or_restarts_wakes_its_run_whatever_the_pods_phase() -> None:
    cache = WatchCache(settled=settled_body)
    cache.creating_run(KEY)
    cache.saw_run(run(5))
    running = [{"name": "setup", "state": {"running": {}}}]
    assert cache.saw_pod(with_status("p", 7, phase="Pending", initContainerStatuses=running))
    ended = [{"name": "setup", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]
    assert cache.saw_pod(with_status("p", 8, phase="Pending", initContainerStatuses=ended))
    again = [{"name": "setup", "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "restartCount": 1}]
    assert cache.saw_pod(with_status("p", 9, phase="Pending", initContainerStatuses=again))
    assert cache.saw_pod(with_status("p", 10, phase="Failed", reason="Evicted", initContainerStatuses=again))
