"""The release's runs a final pass listed for its regression verdict draw its report's history strip: one
LIST of the release's runs per run, none for a release's first run."""

from __future__ import annotations

from typing import Any

import pytest
from controller_harness import NS, deploy, deployed_secret, make_controller, passing_hook
from fake_kube import Clock, FakeKube
from runs import make_run

from helm_e2e.reconcile.recent_runs import MAX_AGE_SECONDS, MAX_ENTRIES, RecentRuns
from helm_e2e.settings import Settings


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_kept_runs_are_taken_once_and_not_when_too_old() -> None:
    clock = Ticks()
    recent = RecentRuns(clock=clock)
    runs = [make_run("a")]
    recent.keep(("ns", "web-2"), runs)
    assert recent.take(("ns", "web-2")) == runs
    assert recent.take(("ns", "web-2")) is None  # a retried send lists again
    recent.keep(("ns", "web-2"), runs)
    clock.now += MAX_AGE_SECONDS + 1
    assert recent.take(("ns", "web-2")) is None


def test_the_oldest_entry_goes_beyond_the_bound() -> None:
    recent = RecentRuns()
    for i in range(MAX_ENTRIES + 1):
        recent.keep(("ns", f"r-{i}"), [])
    assert recent.take(("ns", "r-0")) is None
    assert recent.take(("ns", f"r-{MAX_ENTRIES}")) == []


def test_entries_no_report_took_go_once_too_old() -> None:
    clock = Ticks()
    recent = RecentRuns(clock=clock)
    for i in range(10):
        recent.keep(("ns", f"r-{i}"), [make_run("a")])
    clock.now += MAX_AGE_SECONDS + 1
    recent.keep(("ns", "r-10"), [])
    assert len(recent) == 1  # the ten no report took are gone, not held until 1,024 more runs end


async def test_without_smtp_no_runs_are_kept_for_a_report(kube: FakeKube, clock: Clock) -> None:
    controller = make_controller(kube, clock)  # no SMTP host: no report will draw a history strip
    for r in (1, 2):
        await deploy(controller, kube, deployed_secret(revision=r, hooks=[passing_hook("smoke")]))
        await controller.reconcile((NS, f"web-{r}"))
        kube.finish_pod(NS, f"web-{r}-smoke", exit_code=0)
        await controller.reconcile((NS, f"web-{r}"))
    assert kube.runs[(NS, "web-2")]["status"]["phase"] == "Succeeded"  # its regression LIST ran
    assert controller.executor.observer.recent is None


@pytest.mark.parametrize(("revision", "lists"), [(1, 0), (2, 1)])
async def test_a_reported_run_lists_its_releases_runs_at_most_once(
    kube: FakeKube, clock: Clock, monkeypatch: pytest.MonkeyPatch, revision: int, lists: int
) -> None:
    strips: list[str] = []

    async def fake_send(message: Any, *, settings: Settings) -> None:
        strips.append(message.get_body(preferencelist=("plain",)).get_content())

    listed: list[str] = []
    list_runs = kube.list_runs

    async def counted(namespace: str, release: str | None) -> list[Any]:
        listed.append(str(release))
        return await list_runs(namespace, release)

    monkeypatch.setattr(kube, "list_runs", counted)
    monkeypatch.setattr("helm_e2e.reconcile.deliver_mail.send_email", fake_send)
    controller = make_controller(kube, clock, smtp_host="mail", mail_to="ops@example.com")
    for r in range(1, revision + 1):
        name = f"web-{r}"
        await deploy(controller, kube, deployed_secret(revision=r, hooks=[passing_hook("smoke")]))
        listed.clear()  # what the intake listed (older runs to supersede) is not the report's
        await controller.reconcile((NS, name))
        kube.finish_pod(NS, f"{name}-smoke", exit_code=0)
        await controller.reconcile((NS, name))  # the final status, after the regression's LIST
        await controller.reconcile((NS, name))  # the report
    assert len(strips) == revision
    assert listed == ["web"] * lists
    assert ("History     r1 ✓ 0s · r2 ✓" in strips[-1]) == (
        revision == 2
    )  # r1 is drawn in r2's history strip
