"""The pass (reconcile/executor.py) over the fake Kube port: observe → decide → apply; a pass that raises is
retried with the core's backoff and, at its bound, the run ends Error; a body that does not parse is
refused once; an end that meets a conflicting write is decided again on a fresh read."""

from __future__ import annotations

from typing import Any

import pytest
from fake_kube import Clock, FakeKube
from prometheus_client import REGISTRY
from runs import report_run as build_run

from helm_e2e.core.lifecycle import end_runs
from helm_e2e.core.model import names
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_codec import build_run_body, run_from_body, status_body
from helm_e2e.core.model.run_status import RunPhase, RunStatus
from helm_e2e.reconcile import executor as executor_module
from helm_e2e.reconcile.executor import MAX_RECONCILE_FAILURES, Executor, build_policy
from helm_e2e.reconcile.planning import Planner
from helm_e2e.settings import Settings

KEY = ("prod", "webhooks-12")


def make_executor(kube: FakeKube, clock: Clock, **settings: Any) -> Executor:
    config = Settings(**settings)
    planner = Planner(settings=config, kube=kube, clock=clock)
    return Executor(settings=config, kube=kube, planner=planner, clock=clock)


async def store_active(kube: FakeKube) -> Run:
    run = build_run()
    run.spec.release.secret_uid = "uid-secret"
    await kube.create_run(build_run_body(run.spec, name=run.name, namespace=run.namespace))
    await kube.patch_run_status(
        *KEY, status_body(RunStatus(phase=RunPhase.RUNNING, started_at=run.status.started_at))
    )
    return run_from_body(kube.runs[KEY])


def test_the_controllers_bound_is_the_cores() -> None:
    assert MAX_RECONCILE_FAILURES == end_runs.MAX_RECONCILE_FAILURES == 5


def test_the_policy_carries_the_history_limit_and_the_collector_only_with_artifacts() -> None:
    config = Settings(history_limit=3, artifacts_url="http://up:8081/", collector_image="img")
    assert build_policy(config).history_limit == 3
    assert build_policy(config).collector is None
    collector = build_policy(config, artifacts=True).collector
    assert collector is not None
    assert (collector.upload_url, collector.image, collector.token) == (
        "http://up:8081/v1/uploads",
        "img",
        "",
    )


async def broken(run: Run) -> Any:
    raise KeyError("metadata")


async def test_a_failing_pass_backs_off_then_ends_the_run_error_naming_the_exception_type(
    kube: FakeKube, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store_active(kube)
    executor = make_executor(kube, clock)
    monkeypatch.setattr(executor.observer, "objects", broken)
    delays = [await executor.reconcile(KEY) for _ in range(MAX_RECONCILE_FAILURES)]
    assert delays == [2.0, 4.0, 8.0, 16.0, 1.0]
    status = kube.runs[KEY]["status"]
    assert (status["phase"], status["tests"][0]["reason"]) == ("Error", names.REASON_RECONCILE_FAILED)
    assert status["message"] == "the operator failed 5 times on this run (KeyError)"
    assert await executor.reconcile(KEY) == 2.0  # forgotten once it gave up: a new count


async def test_a_pass_that_succeeds_resets_the_count(
    kube: FakeKube, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store_active(kube)
    executor = make_executor(kube, clock)
    good = executor.observer.objects
    monkeypatch.setattr(executor.observer, "objects", broken)
    assert [await executor.reconcile(KEY) for _ in range(2)] == [2.0, 4.0]
    monkeypatch.setattr(executor.observer, "objects", good)
    await executor.reconcile(KEY)
    monkeypatch.setattr(executor.observer, "objects", broken)
    assert await executor.reconcile(KEY) == 2.0


async def test_a_body_that_does_not_parse_is_refused_once(kube: FakeKube, clock: Clock) -> None:
    kube.runs[KEY] = {
        "metadata": {"name": KEY[1], "namespace": KEY[0], "uid": "u", "resourceVersion": "1"},
        "spec": {},
    }
    executor = make_executor(kube, clock)
    assert await executor.reconcile(KEY) is None
    assert await executor.reconcile(KEY) is None
    assert kube.runs[KEY]["status"]["phase"] == "Refused"
    assert len(kube.status_patches) == 1
    assert kube.reasons() == [names.REASON_REFUSED]


async def test_an_end_that_meets_a_conflicting_write_is_decided_again_on_a_fresh_read(
    kube: FakeKube, clock: Clock
) -> None:
    run = await store_active(kube)
    kube.conflict_next_patch = True
    body = kube.runs[KEY]
    await make_executor(kube, clock).end(run, body, RunPhase.SUPERSEDED, names.REASON_SUPERSEDED, "r13")
    assert kube.runs[KEY]["status"]["phase"] == "Superseded"
    assert kube.reasons() == [names.REASON_SUPERSEDED]


async def test_a_conflicting_status_write_stops_the_pass_and_what_it_completes_is_counted_once(
    kube: FakeKube, clock: Clock
) -> None:
    """A final run's first outbox step (no SMTP: not sent) is written, then counted; a conflict stops the
    pass before its requeue, and the next pass writes it."""
    await store_active(kube)
    await kube.patch_run_status(*KEY, status_body(build_run(RunPhase.SUCCEEDED).status))
    executor = make_executor(kube, clock, smtp_host="")
    before = not_sent()
    kube.conflict_next_patch = True
    assert await executor.reconcile(KEY) == executor_module.AFTER_CONFLICT
    assert not_sent() == before
    await executor.reconcile(KEY)
    email = {c["type"]: c for c in kube.runs[KEY]["status"]["conditions"]}[names.COND_EMAIL_SENT]
    assert email["reason"] == names.MAIL_DISABLED
    assert not_sent() == before + 1


def not_sent() -> float:
    return REGISTRY.get_sample_value("helm_e2e_emails_total", {"result": names.MAIL_DISABLED}) or 0.0
