"""Flux's remediation as helm-controller v1.6.3 writes it (hand check, docs/gitops.md): a rollback revision
Flux never tests gets its chart tests run here, and the outcome Flux recorded of a failing revision is read
from its own snapshot of the status history, also when a newer revision would supersede its run
(core/sources/flux.py, reconcile/controller.py `supersede_older_runs`)."""

from __future__ import annotations

from typing import Any

import pytest
from fake_kube import Clock, FakeKube
from flux_objects import FLUX, flux_manifest, flux_run, helm_release
from helm_encoding import helm_release_doc, helm_secret

from helm_e2e.core.model import names
from helm_e2e.core.model.release import Trigger
from helm_e2e.core.model.run import TestSource
from helm_e2e.core.model.run_codec import run_from_body
from helm_e2e.core.model.run_status import RunPhase, TestPhase, TestResult
from helm_e2e.core.sources import flux
from helm_e2e.reconcile.controller import Controller
from helm_e2e.settings import Settings

FAILED = {"lastStarted": "2026-12-05T23:40:45Z", "lastCompleted": "2026-12-05T23:40:50Z", "phase": "Failed"}


def remediated(*, tested: int = 4, key: str = "web-smoke") -> dict[str, Any]:
    """The HelmRelease after Flux's remediation (retries: 1, strategy: rollback) of two failing upgrades,
    as helm-controller v1.6.3 left it: v5 a rollback, never tested; v4 the failed upgrade (its `action`
    rewritten to rollback by then); v3 a rollback; v1 and v2 trimmed. testHooks keys: bare hook names."""
    hr = helm_release(releaseName="web", storageNamespace="shop", test={"enable": True})
    snap = {"name": "web", "namespace": "shop", "status": "deployed", "apiVersion": "v2"}
    hr["status"]["history"] = [
        {**snap, "version": 5, "action": "rollback", "chartVersion": "0.1.0+230fdde12da0"},
        {**snap, "version": tested, "action": "rollback", "testHooks": {key: FAILED}},
        {**snap, "version": 3, "action": "rollback", "status": "superseded"},
    ]
    return hr


@pytest.mark.parametrize("key", ["web-smoke", "shop/web-smoke"], ids=["v1.6.3", "namespaced-key"])
def test_the_outcome_of_a_revision_is_read_from_its_own_snapshot_not_only_the_newest(key: str) -> None:
    found = flux.flux_test_results(remediated(key=key), release="web", namespace="shop", revision=4)
    assert list(found) == ["web-smoke"]
    assert (found["web-smoke"].phase, found["web-smoke"].reason) == (TestPhase.FAILED, "FluxFailed")
    for untested in (5, 3, 2):  # rollbacks carry no testHooks; v2's snapshot is trimmed
        assert flux.flux_test_results(remediated(), release="web", namespace="shop", revision=untested) == {}


@pytest.mark.parametrize(
    ("trigger", "runs"), [(Trigger.INSTALL, True), (Trigger.UPGRADE, True), (Trigger.ROLLBACK, False)]
)
def test_flux_runs_the_chart_tests_of_an_install_or_upgrade_never_of_a_rollback(
    trigger: Trigger, runs: bool
) -> None:
    assert flux.flux_runs_tests(remediated(), release="web", namespace="shop", trigger=trigger) is runs


def result(phase: TestPhase, name: str = "web-smoke") -> TestResult:
    return TestResult(name=name, phase=phase, reason="FluxFailed" if phase == TestPhase.FAILED else "")


def test_a_run_whose_only_open_tests_flux_finished_is_not_superseded() -> None:
    run = flux_run()
    assert flux.pending_flux_tests(run) == ["web-smoke"]
    assert flux.before_superseding(run, {"web-smoke": result(TestPhase.FAILED)}) is None
    assert flux.before_superseding(run, {}) == run  # Flux recorded nothing: superseded as before
    assert flux.before_superseding(run, {"web-smoke": result(TestPhase.RUNNING)}) == run


def test_a_run_with_a_suite_test_still_going_is_superseded_with_fluxs_outcome_kept() -> None:
    run = flux_run()
    run.spec.tests.append(TestSource(name="api", source="suite/api", timeout_seconds=60))
    ending = flux.before_superseding(run, {"web-smoke": result(TestPhase.FAILED)})
    assert ending is not None
    assert [(t.name, t.phase, t.reason) for t in ending.status.tests] == [
        ("web-smoke", TestPhase.FAILED, "FluxFailed")
    ]
    assert flux.pending_flux_tests(ending) == []


# --- the controller: a rollback revision, and the revision it remediated -----------------------------------
def secret(revision: int, description: str) -> dict[str, Any]:
    info = {"status": "deployed", "description": description, "last_deployed": "2026-11-25T10:05:00.5Z"}
    info["first_deployed"] = "2026-11-25T10:00:00.123456789Z"
    doc = helm_release_doc(revision=revision, manifest=flux_manifest(), info=info)
    body = helm_secret(doc, name=f"sh.helm.release.v1.web.v{revision}")
    return body


async def deploy(controller: Controller, kube: FakeKube, revision: int, description: str) -> None:
    body = secret(revision, description)
    kube.secrets[("shop", body["metadata"]["name"])] = body
    await controller.on_release_secret("ADDED", body)


async def test_a_rollback_flux_wrote_gets_its_chart_tests_run_here(kube: FakeKube, clock: Clock) -> None:
    kube.helm_releases[("flux-system", "web")] = remediated()
    controller = Controller(settings=Settings(smtp_host="", resync_seconds=5), kube=kube, clock=clock)
    await deploy(controller, kube, 5, "Rollback to 3")
    run = run_from_body(kube.runs[("shop", "web-5")])
    assert (run.spec.release.trigger, run.spec.release.managed_by) == (Trigger.ROLLBACK, FLUX)
    assert [(t.name, t.source) for t in run.spec.tests] == [("web-smoke", "hook")]  # Flux never tests it
    assert names.EVENT_FLUX_TESTS not in kube.reasons()


async def test_the_run_of_the_revision_flux_remediated_ends_failed_not_superseded(
    kube: FakeKube, clock: Clock
) -> None:
    """Flux tested v4, it failed, Flux wrote the rollback v5 within the second: v4's run has not read the
    outcome yet when v5's run is created, yet it ends Failed with Flux's outcome."""
    hr = remediated()
    hr["status"]["history"] = hr["status"]["history"][1:]  # v4 tested (Failed), v5 not written yet
    kube.helm_releases[("flux-system", "web")] = hr
    controller = Controller(settings=Settings(smtp_host="", resync_seconds=5), kube=kube, clock=clock)
    await deploy(controller, kube, 4, "Upgrade complete")
    assert [t.source for t in run_from_body(kube.runs[("shop", "web-4")]).spec.tests] == ["flux"]
    kube.helm_releases[("flux-system", "web")] = remediated()
    await deploy(controller, kube, 5, "Rollback to 3")
    assert run_from_body(kube.runs[("shop", "web-4")]).status.phase != RunPhase.SUPERSEDED
    await controller.executor.reconcile(("shop", "web-4"))  # its own next pass
    ended = run_from_body(kube.runs[("shop", "web-4")])
    assert ended.status.phase == RunPhase.FAILED
    assert [(t.name, t.phase, t.reason) for t in ended.status.tests] == [
        ("web-smoke", TestPhase.FAILED, "FluxFailed")
    ]


async def test_a_flux_run_whose_outcome_flux_has_not_recorded_is_still_superseded(
    kube: FakeKube, clock: Clock
) -> None:
    hr = remediated(tested=2)  # v4's test not recorded (or trimmed)
    kube.helm_releases[("flux-system", "web")] = hr
    controller = Controller(settings=Settings(smtp_host="", resync_seconds=5), kube=kube, clock=clock)
    await deploy(controller, kube, 4, "Upgrade complete")
    await deploy(controller, kube, 5, "Rollback to 3")
    ended = run_from_body(kube.runs[("shop", "web-4")])
    assert ended.status.phase == RunPhase.SUPERSEDED
    assert [(t.name, t.phase) for t in ended.status.tests] == [("web-smoke", TestPhase.CANCELLED)]
