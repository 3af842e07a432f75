"""Argo CD Applications as a source of deploys (core/sources/argocd.py): which sync is tested and when, what it
deployed, which suites select it, and the intake through the controller with an in-memory Kube port."""

from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from argocd_apps import SHA, application
from fake_kube import NOW

from helm_e2e.core.model.release import ManagedBy, Trigger
from helm_e2e.core.model.run import ReleaseRef, Run, RunSpec
from helm_e2e.core.model.run_status import RunPhase, RunStatus
from helm_e2e.core.model.suite import ApplicationSelector, SuiteSpec
from helm_e2e.core.outcomes.report import render_report
from helm_e2e.core.plan.build import suite_matches
from helm_e2e.core.sources import argocd


def decide(app: dict[str, Any], now: datetime = NOW) -> argocd.Decision:
    return argocd.decide_sync(app, now=now, ready_timeout_seconds=600)


def test_a_new_successful_healthy_sync_is_tested_as_its_own_run() -> None:
    decision = decide(application(history=3))
    assert decision.verdict == argocd.Verdict.TEST
    assert decision.sync is not None
    assert (decision.sync.history_id, decision.sync.namespace, decision.sync.revision) == (3, "shop", SHA)
    assert argocd.build_run_name("web", 3) == "web-a3"  # never a Helm release's `web-3`


@pytest.mark.parametrize("app", ["web", "web-2", "w" * 253, "web-a1", "a.b-c"])
@pytest.mark.parametrize(("history", "attempt"), [(1, 2), (12, 3), (999999, 99)])
def test_a_syncs_rerun_name_is_a_name_no_helm_run_and_no_first_run_of_a_sync_can_have(
    app: str, history: int, attempt: int
) -> None:
    name = argocd.build_attempt_run_name(app, history, attempt)
    assert len(name) <= 63
    assert name.endswith(f"-a{history}-r{attempt}")
    assert not re.search(r"-\d+(-r\d+)?$", name)  # a Helm run: `<release>-<rev>[-r<n>]`
    assert not re.search(r"-a\d+$", name)  # a sync's first run: `<app>-a<id>`
    assert argocd.build_attempt_run_name(app, history, 1) == argocd.build_run_name(app, history)


@pytest.mark.parametrize(
    ("app", "verdict"),
    [
        (application(phase="Failed"), argocd.Verdict.NONE),
        (application(phase="Running"), argocd.Verdict.NONE),
        (application(history=0), argocd.Verdict.NONE),
        (application(namespace=""), argocd.Verdict.NONE),  # no destination namespace: nowhere to run
        (application(server="https://other-cluster:6443"), argocd.Verdict.NONE),  # another cluster
        (application(health="Progressing"), argocd.Verdict.WAIT),
    ],
    ids=["failed", "running", "no-history", "no-namespace", "remote", "progressing"],
)
def test_only_a_successful_in_cluster_sync_is_tested_and_only_once_healthy(
    app: dict[str, Any], verdict: argocd.Verdict
) -> None:
    assert decide(app).verdict == verdict


def test_a_sync_not_healthy_within_the_timeout_names_what_is_not_healthy() -> None:
    app = application(health="Degraded")
    app["status"]["resources"][0]["health"]["message"] = "Deployment exceeded its progress deadline"
    decision = decide(app, NOW + timedelta(seconds=600))
    assert decision.verdict == argocd.Verdict.NOT_READY
    assert decision.message == (
        "application not Healthy within 600s: Degraded; deployment/web Degraded "
        "(Deployment exceeded its progress deadline)"
    )


def test_the_release_the_planner_sees_carries_the_apps_values_tag_and_labels() -> None:
    app = application(tag="1.2.3")
    release = argocd.build_release(app, argocd.latest_sync(app))  # type: ignore[arg-type]
    assert (release.name, release.namespace, release.revision, release.trigger) == (
        "web",
        "shop",
        1,
        Trigger.SYNC,
    )
    assert release.values == {"replicas": 2, "image": {"tag": "1.2.3"}}
    assert (release.chart_name, release.chart_version, release.app_version) == ("web", "main", "0.9.0")
    assert release.app_labels == {"team": "shop"}
    assert release.hooks == []  # Argo skips helm.sh/hook: test


def test_suites_select_applications_only_when_they_ask_and_then_no_helm_release() -> None:
    app = application()
    release = argocd.build_release(app, argocd.latest_sync(app))  # type: ignore[arg-type]
    helm = release.model_copy(update={"trigger": Trigger.UPGRADE})
    every = SuiteSpec.model_validate({"tests": []})
    by_name = SuiteSpec.model_validate({"applications": {"names": ["web"]}, "tests": []})
    by_label = SuiteSpec.model_validate({"applications": {"labels": {"team": "shop"}}, "tests": []})
    other = SuiteSpec.model_validate({"applications": {"labels": {"team": "pay"}}, "tests": []})
    assert [suite_matches(s, release) for s in (every, by_name, by_label, other)] == [
        False,
        True,
        True,
        False,
    ]
    assert [suite_matches(s, helm) for s in (every, by_name)] == [True, False]
    assert argocd.selects(ApplicationSelector(), app="web", labels={}) is False


def test_the_commit_is_the_sync_revision_and_the_report_says_how_to_roll_back_with_argo() -> None:
    sync = argocd.latest_sync(application(history=4))
    assert sync is not None
    assert argocd.commit_of(sync) == SHA
    managed = ManagedBy(kind="Application", name="web", namespace="argocd")
    ref = ReleaseRef(
        name="web", namespace="shop", revision=4, chart="web", chart_version="main", trigger=Trigger.SYNC,
        commit=SHA, managed_by=managed,
    )  # fmt: skip
    failed = Run(
        name="web-a4", namespace="shop", spec=RunSpec(release=ref), status=RunStatus(phase=RunPhase.FAILED)
    )
    text = render_report(failed, cluster="prod").text
    assert "Managed by  Argo CD Application argocd/web (sync 4)" in text
    assert "argocd app rollback web 3" in text
    passed = failed.model_copy(update={"status": RunStatus(phase=RunPhase.SUCCEEDED)})
    assert "argocd app rollback" not in render_report(passed, cluster="prod").text


def test_the_release_is_what_the_sync_deployed_not_what_the_spec_says_since() -> None:
    app = application(tag="1.0.0")
    synced_source = copy.deepcopy(app["spec"]["source"])
    app["status"]["history"][0]["source"] = synced_source
    app["spec"]["source"]["helm"]["parameters"][0]["value"] = "2.0.0"  # edited, not synced (auto-sync off)
    release = argocd.build_release(app, argocd.latest_sync(app))  # type: ignore[arg-type]
    assert release.values["image"] == {"tag": "1.0.0"}
    del app["status"]["history"][0]["source"]  # an entry without its source: the spec, as before
    assert argocd.build_release(app, argocd.latest_sync(app)).values["image"] == {"tag": "2.0.0"}  # type: ignore[arg-type]
