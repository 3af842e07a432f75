"""The controller's intake of Helm release Secrets, driven through the in-memory Kube port: which Secret
gets a run (identity, namespace, age, corrupt or not plannable), revisions seen again or deleted, an
uninstall, re-run requests, and what planning costs in sandbox calls (split from test_controller.py)."""

from __future__ import annotations

import asyncio
import copy
from datetime import timedelta
from typing import Any

import pytest
from controller_harness import NS, RUN, deploy, deployed_secret, make_controller, passing_hook, status
from fake_kube import NOW, Clock, FakeKube
from helm_encoding import helm_release_doc, helm_secret

from helm_e2e import errors
from helm_e2e.core.model import names
from helm_e2e.core.model.run import RequestTrigger, RunRequest
from helm_e2e.core.model.run_codec import run_from_body
from helm_e2e.core.model.run_status import RunPhase
from helm_e2e.reconcile.controller import Controller
from helm_e2e.settings import Settings


async def first_revision_deployed(kube: FakeKube, clock: Clock) -> tuple[Controller, dict[str, Any]]:
    """A controller that saw revision 1 of `web` (one passing hook) deployed."""
    controller = make_controller(kube, clock)
    first = deployed_secret(1, hooks=[passing_hook("smoke")])
    await deploy(controller, kube, first)
    return controller, first


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda s: s["metadata"].update(name="sh.helm.release.v1.shop.v13"), id="other-name"),
        pytest.param(lambda s: s["metadata"]["labels"].update(version="13"), id="label-disagrees"),
    ],
)
async def test_a_secret_whose_identity_disagrees_gets_no_run_and_a_warning(
    kube: FakeKube, clock: Clock, forge: Any
) -> None:
    controller = make_controller(kube, clock)
    secret = deployed_secret(hooks=[passing_hook("smoke")])
    forge(secret)
    await deploy(controller, kube, secret)
    assert kube.runs == {}
    assert kube.reasons() == [names.EVENT_RELEASE_IDENTITY_MISMATCH]


async def test_the_namespace_comes_from_the_secret_never_from_the_release_json(
    kube: FakeKube, clock: Clock
) -> None:
    doc = helm_release_doc()
    doc["namespace"] = "kube-system"  # the JSON claims another namespace
    secret = helm_secret(doc, name="sh.helm.release.v1.web.v1")
    secret["metadata"]["labels"] = {"owner": "helm", "name": "web", "status": "deployed", "version": "1"}
    controller = make_controller(kube, clock)
    await deploy(controller, kube, secret)
    assert [ns for ns, _ in kube.runs] in ([], [NS])
    assert all(ns == NS for ns, _ in kube.pods)


async def test_uninstalling_cancels_the_active_run(kube: FakeKube, clock: Clock) -> None:
    controller = make_controller(kube, clock)
    secret = deployed_secret(hooks=[passing_hook("smoke")])
    await deploy(controller, kube, secret)
    await controller.reconcile((NS, RUN))
    kube.secrets.clear()
    controller.checks.delay_seconds = 0
    await controller.on_release_secret("DELETED", secret)
    await controller.checks.settle()
    assert status(kube)["phase"] == "Cancelled"
    await controller.reconcile((NS, RUN))
    assert kube.deleted_pods == ["web-1-smoke"]


async def test_a_corrupt_secret_is_warned_about_once_and_an_old_revision_gets_no_run(
    kube: FakeKube, clock: Clock
) -> None:
    controller = make_controller(kube, clock)
    corrupt = deployed_secret()
    corrupt["data"]["release"] = "bm90IGEgcmVsZWFzZQ=="
    await deploy(controller, kube, corrupt)
    await deploy(controller, kube, corrupt)
    assert kube.reasons() == [names.EVENT_RELEASE_DECODE_FAILED]
    clock.now += timedelta(days=1)
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    assert kube.runs == {}


async def test_a_revision_seen_again_after_a_restart_keeps_its_one_run(kube: FakeKube, clock: Clock) -> None:
    secret = deployed_secret(hooks=[passing_hook("smoke")])
    await deploy(make_controller(kube, clock), kube, secret)
    await deploy(make_controller(kube, clock), kube, secret)  # a new operator re-lists the same Secret
    assert list(kube.runs) == [(NS, RUN)]


def used_suite() -> dict[str, Any]:
    """A suite that tests every release of the namespace (its status is written when a run uses it)."""
    test = {"name": "api", "template": {"containers": [{"name": "t", "image": "busybox"}]}}
    return {"metadata": {"name": "api", "namespace": NS, "generation": 1}, "spec": {"tests": [test]}}


async def test_a_live_revision_is_created_without_asking_first_and_its_suites_status_after(
    kube: FakeKube, clock: Clock
) -> None:
    kube.suites[NS] = [used_suite()]
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    assert list(kube.runs) == [(NS, RUN)]
    assert kube.run_reads == []
    assert kube.suites[NS][0]["status"]["conditions"][0]["message"] == "rendered for the last run"
    kube.suites[NS][0]["status"] = {}
    events = list(kube.events)
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))  # `helm test` rewrites it
    assert list(kube.runs) == [(NS, RUN)]
    assert kube.suites[NS][0]["status"] == {}  # its run existed: nothing about it is written again
    assert kube.events == events


async def test_a_revision_from_kopfs_listing_is_asked_for_first_and_not_planned_again(
    kube: FakeKube, clock: Clock
) -> None:
    secret = deployed_secret(hooks=[passing_hook("smoke")])
    await deploy(make_controller(kube, clock), kube, secret)
    restarted = make_controller(kube, clock)

    async def never(secret: Any, *, context: Any = None) -> Any:
        raise AssertionError("a run that exists is not planned again")

    restarted.planner.plan = never  # type: ignore[method-assign]
    await restarted.on_release_secret(None, secret)  # kopf's listing at a start
    assert kube.run_reads == [RUN]
    assert list(kube.runs) == [(NS, RUN)]


async def test_planning_that_runs_out_of_its_sandbox_limits_is_a_warning_not_a_run(
    kube: FakeKube, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    controller = make_controller(kube, clock)

    async def too_slow(secret: Any, *, context: Any = None) -> Any:
        raise errors.SandboxTimeout("sandboxed work ran longer than 10s; worker killed")

    monkeypatch.setattr(controller.planner, "plan", too_slow)
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    assert kube.runs == {}
    assert kube.reasons() == [names.EVENT_RELEASE_DECODE_FAILED]
    assert "planning failed" in kube.events[0][3]


async def test_a_missing_pod_whose_release_cannot_be_planned_again_ends_not_planned(
    kube: FakeKube, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await deploy(make_controller(kube, clock), kube, deployed_secret(hooks=[passing_hook("smoke")]))
    restarted = make_controller(kube, clock)

    async def out_of_memory(secret: Any, *, context: Any = None) -> Any:
        raise errors.SandboxMemory("sandboxed work exceeded its memory (MemoryError)")

    monkeypatch.setattr(restarted.planner, "plan", out_of_memory)
    await restarted.reconcile((NS, RUN))
    test = status(kube)["tests"][0]
    assert (test["reason"], "could not be planned again" in test["message"]) == (
        names.REASON_NOT_PLANNED,
        True,
    )


@pytest.mark.parametrize("problem", ["no-deployed-revision", "secret-gone", "identity", "corrupt"])
async def test_a_rerun_request_that_cannot_be_planned_makes_no_run(
    kube: FakeKube, clock: Clock, problem: str
) -> None:
    controller = make_controller(kube, clock)
    secret = deployed_secret(hooks=[passing_hook("smoke")])
    await deploy(controller, kube, secret)
    key = (NS, "sh.helm.release.v1.web.v1")
    if problem == "no-deployed-revision":
        kube.secrets[key]["metadata"]["labels"]["status"] = "superseded"
    elif problem == "secret-gone":
        kube.secrets[key] = {**kube.secrets[key], "metadata": {**kube.secrets[key]["metadata"], "name": "x"}}
        kube.secrets[(NS, "x")] = kube.secrets.pop(key)
    elif problem == "identity":
        kube.secrets[key]["metadata"]["labels"]["name"] = "other"
        kube.secrets[key]["metadata"]["labels"]["name"] = "web"
        kube.secrets[key]["metadata"]["name"] = "sh.helm.release.v1.web.v1"
        kube.secrets[key]["metadata"]["labels"]["version"] = "1"
        kube.secrets[key]["metadata"]["namespace"] = ""
    else:
        kube.secrets[key]["data"]["release"] = "bm90IGEgcmVsZWFzZQ=="
    request = RunRequest(trigger=RequestTrigger.RERUN, token="tok-1")
    assert await controller.request_attempt(NS, "web", request) is None
    assert list(kube.runs) == [(NS, RUN)]


def with_status(secret: dict[str, Any], status: str) -> dict[str, Any]:
    changed = copy.deepcopy(secret)
    changed["metadata"]["labels"]["status"] = status
    return changed


@pytest.mark.parametrize(
    ("deleted_as", "counted"),
    [("superseded", []), ("deployed", ["web"])],  # Helm's --history-max pruning; a hand-deleted current one
)
async def test_a_deleted_revision_keeps_runs_while_another_remains_and_pruning_costs_no_count(
    kube: FakeKube, clock: Clock, deleted_as: str, counted: list[str]
) -> None:
    controller, first = await first_revision_deployed(kube, clock)
    await deploy(controller, kube, deployed_secret(2, hooks=[passing_hook("smoke")]))
    kube.secrets.pop((NS, "sh.helm.release.v1.web.v1"))
    controller.checks.delay_seconds = 0
    await controller.on_release_secret("DELETED", with_status(first, deleted_as))
    await controller.checks.settle()
    assert kube.revision_counts == counted  # a LIST of the release's revisions each
    assert status(kube, "web-2").get("phase", "Pending") != "Cancelled"


async def test_an_uninstall_deleting_its_revisions_in_any_order_cancels_when_its_marked_revision_goes(
    kube: FakeKube, clock: Clock
) -> None:
    """The watch selects only deployed revisions and an uninstall's marks (names.HELM_SECRET_SELECTOR):
    Helm marks the deployed revision `uninstalling`, then deletes every revision; the marked one's
    deletion is the only one that arrives, in whatever order Helm deletes, and it is enough: no LIST."""
    controller, first = await first_revision_deployed(kube, clock)
    second = deployed_secret(2, hooks=[passing_hook("smoke")])
    await deploy(controller, kube, second)
    kube.secrets[(NS, "sh.helm.release.v1.web.v1")] = with_status(first, "superseded")
    await controller.on_release_secret("DELETED", with_status(first, "superseded"))  # left the selection
    kube.secrets[(NS, "sh.helm.release.v1.web.v2")] = with_status(second, "uninstalling")
    await controller.on_release_secret("MODIFIED", with_status(second, "uninstalling"))  # helm's first step
    assert status(kube, "web-2").get("phase") != "Cancelled"  # the uninstall may still fail
    kube.secrets.pop((NS, "sh.helm.release.v1.web.v2"))  # the marked revision goes first here
    await controller.on_release_secret("DELETED", with_status(second, "uninstalling"))
    assert status(kube, "web-2")["phase"] == "Cancelled"  # revision 1, still stored, does not matter
    assert kube.revision_counts == []


async def test_the_deployed_revision_deleted_by_hand_cancels_only_when_nothing_is_left(
    kube: FakeKube, clock: Clock
) -> None:
    controller, first = await first_revision_deployed(kube, clock)
    kube.secrets[(NS, "sh.helm.release.v1.web.v1")] = with_status(first, "superseded")
    second = deployed_secret(2, hooks=[passing_hook("smoke")])
    await deploy(controller, kube, second)
    kube.secrets.pop((NS, "sh.helm.release.v1.web.v2"))
    controller.checks.delay_seconds = 0
    await controller.on_release_secret("DELETED", second)
    await controller.checks.settle()
    assert status(kube, "web-2").get("phase") != "Cancelled"  # revision 1 is still installed
    kube.secrets.pop((NS, "sh.helm.release.v1.web.v1"))
    await controller.on_release_secret("DELETED", second)  # e.g. a relist after both went
    await controller.checks.settle()
    assert status(kube, "web-2")["phase"] == "Cancelled"
    assert kube.revision_counts == ["web", "web"]


async def test_a_supersede_that_meets_a_concurrent_status_write_is_decided_again_and_never_lost(
    kube: FakeKube, clock: Clock
) -> None:
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(1))
    await controller.reconcile((NS, RUN))
    body = copy.deepcopy(kube.runs[(NS, RUN)])  # what the supersede read
    kube.conflict_next_patch = True  # the run's own reconcile wrote its status in between
    run = run_from_body(body)
    await controller.executor.end(run, body, RunPhase.SUPERSEDED, names.REASON_SUPERSEDED, "r2 replaces it")
    assert status(kube)["phase"] == "Superseded"


@pytest.mark.parametrize(
    ("created_ago", "runs"),
    [(timedelta(seconds=5), 1), (timedelta(hours=2), 0)],
    ids=["created-just-now", "created-before-the-grace"],
)
async def test_a_secret_created_before_the_grace_is_skipped_without_decoding_it(
    kube: FakeKube, clock: Clock, monkeypatch: pytest.MonkeyPatch, created_ago: timedelta, runs: int
) -> None:
    controller = make_controller(kube, clock, startup_grace_seconds=600)
    decoded: list[str] = []
    plan = controller.planner.plan  # decodes and plans, in one sandbox call

    async def counting(secret: Any, *, context: Any = None) -> Any:
        decoded.append(secret["metadata"]["name"])
        return await plan(secret, context=context)

    monkeypatch.setattr(controller.planner, "plan", counting)
    secret = deployed_secret(hooks=[passing_hook("smoke")])
    secret["metadata"]["creationTimestamp"] = (NOW - created_ago).strftime("%Y-%m-%dT%H:%M:%SZ")
    await deploy(controller, kube, secret)
    assert len(kube.runs) == runs
    assert len(decoded) == runs  # the old revision is not even decoded


@pytest.mark.parametrize("value", ["", "soon", "2026-11-25T08:00:00", 5])
async def test_a_creation_time_that_is_not_a_zoned_time_is_ignored(
    kube: FakeKube, clock: Clock, value: object
) -> None:
    secret = deployed_secret(hooks=[passing_hook("smoke")])
    secret["metadata"]["creationTimestamp"] = value
    await deploy(make_controller(kube, clock), kube, secret)
    assert list(kube.runs) == [(NS, RUN)]


class CountingSandbox:
    """The sandbox's one entry point, run in this process; each call (a worker's job) is counted."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def run_bounded(self, fn: Any, *args: Any, time_limit: float, **kwargs: Any) -> Any:
        self.calls.append(getattr(fn, "__name__", ""))
        return fn(*args, **kwargs)


async def test_a_new_revision_costs_one_sandbox_call_for_its_whole_run(kube: FakeKube, clock: Clock) -> None:
    """Decoded and planned at once (it was decoded, then decoded again to plan: 2 calls); its reconciles use
    the kept plan; kopf's listing finds its run first (it was decoded: 1 call); a re-run plans once."""
    box = CountingSandbox()
    settings = Settings(smtp_host="", pod_ttl_seconds=60, resync_seconds=5)
    controller = Controller(settings=settings, kube=kube, clock=clock, sandbox=box)  # type: ignore[arg-type]
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    for _ in range(3):
        await controller.reconcile((NS, RUN))
    assert box.calls == ["_decode_and_plan_in_worker"]
    await controller.on_release_secret(None, deployed_secret(hooks=[passing_hook("smoke")]))
    assert box.calls == ["_decode_and_plan_in_worker"]
    request = RunRequest(trigger=RequestTrigger.RERUN, token="tok-1")
    assert await controller.request_attempt(NS, "web", request) == "web-1-r2"
    assert box.calls == ["_decode_and_plan_in_worker"] * 2


async def test_the_plan_is_kept_before_the_run_is_created_and_dropped_when_the_run_was_someone_elses(
    kube: FakeKube, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's ADDED event may wake its first pass before the create returns: that pass must find the
    plan kept (no GET of the Secret, no second decode); a 409 leaves no plan of ours for their run."""
    controller = make_controller(kube, clock)
    seen: list[object] = []
    create = kube.create_run

    async def create_run(body: dict[str, Any]) -> Any:
        seen.append(controller.planner.kept((NS, RUN)))
        return await create(body)

    monkeypatch.setattr(kube, "create_run", create_run)
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    assert len(seen) == 1
    assert seen[0] is not None
    other = make_controller(kube, clock)  # a second process meets the run the first one created: 409
    monkeypatch.setattr(kube, "create_run", create)
    await other.on_release_secret("MODIFIED", deployed_secret(hooks=[passing_hook("smoke")]))
    assert other.planner.kept((NS, RUN)) is None


async def test_an_upgrade_superseding_the_deployed_revision_costs_no_list_of_the_release(
    kube: FakeKube, clock: Clock
) -> None:
    """The apiserver sends a revision leaving the watch's selection as DELETED with its old labels
    (`deployed`): the check waits, and the new revision arriving deployed answers it without a request."""
    controller, first = await first_revision_deployed(kube, clock)
    kube.secrets[(NS, "sh.helm.release.v1.web.v1")] = with_status(first, "superseded")
    await controller.on_release_secret("DELETED", first)  # left the selection, labelled as before
    await deploy(controller, kube, deployed_secret(2, hooks=[passing_hook("smoke")]))
    await controller.checks.settle()  # nothing waits: the deployed revision answered the check
    assert kube.revision_counts == []
    assert status(kube, "web-2").get("phase") != "Cancelled"


async def test_a_deployed_revision_deleted_by_hand_is_checked_once_after_the_delay(
    kube: FakeKube, clock: Clock
) -> None:
    controller, first = await first_revision_deployed(kube, clock)
    kube.secrets.clear()
    controller.checks.delay_seconds = 0.05
    for _ in range(3):  # e.g. relists: one check waits per release
        await controller.on_release_secret("DELETED", first)
    assert kube.revision_counts == []  # not yet
    assert status(kube).get("phase") != "Cancelled"
    await asyncio.sleep(0.1)
    await controller.checks.settle()
    assert kube.revision_counts == ["web"]
    assert status(kube)["phase"] == "Cancelled"


async def test_a_check_the_api_fails_is_logged_and_the_next_one_still_runs(
    kube: FakeKube, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    controller, first = await first_revision_deployed(kube, clock)
    kube.secrets.clear()
    controller.checks.delay_seconds = 0
    kube.fail_next_count = errors.KubeError("boom", status=503, reason="ServiceUnavailable")
    await controller.on_release_secret("DELETED", first)
    await controller.checks.settle()
    assert "release.check.failed" in capsys.readouterr().out
    assert status(kube).get("phase") != "Cancelled"
    await controller.on_release_secret("DELETED", first)
    await controller.checks.settle()
    assert status(kube)["phase"] == "Cancelled"
