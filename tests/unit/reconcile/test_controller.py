"""The executor (reconcile/executor.py) driven through an in-memory fake of the Kube port.

Each test plays a release secret into the controller, moves the world (pods finish, pods vanish, the API
refuses, the operator dies) and asserts on what the executor did: runs, pods, status, Events.
"""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import Any

import pytest
from controller_harness import (
    NS,
    RUN,
    deploy,
    deployed_secret,
    make_controller,
    passing_hook,
    raw_hook,
    status,
)
from fake_kube import NOW, Clock, FakeKube
from helm_encoding import helm_release_doc, helm_secret

from helm_e2e.clients.kube import Kube
from helm_e2e.clients.kube_port import KubePort
from helm_e2e.core.lifecycle.start_write import START_WRITE_GRACE_SECONDS
from helm_e2e.core.model import names
from helm_e2e.core.model.run_status import RunPhase, TestPhase
from helm_e2e.reconcile.controller import MAX_RECONCILE_FAILURES
from helm_e2e.settings import Settings


def test_the_fake_has_exactly_the_ports_methods_with_the_same_signatures() -> None:
    port = {n for n, _ in inspect.getmembers(KubePort, inspect.isfunction) if not n.startswith("_")}
    for impl in (Kube, FakeKube):
        for name in port:
            assert inspect.signature(getattr(impl, name)) == inspect.signature(getattr(KubePort, name)), name


async def test_a_deployed_revision_gets_a_run_whose_pods_are_created_by_the_reconcile(
    kube: FakeKube, clock: Clock
) -> None:
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke"), passing_hook("api")]))
    assert list(kube.runs) == [(NS, RUN)]
    assert kube.created_pods == []  # intake decides the run; the reconcile creates its pods
    assert await controller.reconcile((NS, RUN)) == START_WRITE_GRACE_SECONDS
    assert sorted(kube.created_pods) == ["web-1-api", "web-1-smoke"]
    assert status(kube) == {}  # "started" waits for the tests' first change (core/lifecycle/start_write)
    clock.now += timedelta(seconds=START_WRITE_GRACE_SECONDS)
    await controller.reconcile((NS, RUN))
    assert status(kube)["phase"] == "Running"
    assert kube.reasons() == []  # planned, rolled out, started: the spec and status say it, no Normal Event


async def test_a_run_finishes_and_its_report_outbox_and_pod_ttl_complete(
    kube: FakeKube, clock: Clock
) -> None:
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    await controller.reconcile((NS, RUN))
    kube.finish_pod(NS, "web-1-smoke", exit_code=0)
    kube.logs["web-1-smoke"] = "all good\n"
    assert controller.planner.kept((NS, RUN)) is not None  # the intake's plan, kept while the run is active
    # the final write records the outbox too (SMTP off → Disabled): nothing to send, so the pods' TTL next
    assert await controller.reconcile((NS, RUN)) == 60.0
    assert controller.planner.kept((NS, RUN)) is None  # a final run creates nothing: not kept till the TTL
    st = status(kube)
    assert st["phase"] == "Succeeded"
    assert st["tests"][0]["logTail"] == "all good\n"
    email = {c["type"]: c for c in st["conditions"]}[names.COND_EMAIL_SENT]
    assert (email["status"], email["reason"]) == ("False", names.MAIL_DISABLED)
    wait = await controller.reconcile((NS, RUN))  # a pass all the same (a resync): the same wait
    assert wait is not None
    assert 0 < wait <= 60
    clock.now += timedelta(seconds=61)
    await controller.reconcile((NS, RUN))
    assert kube.deleted_pods == ["web-1-smoke"]
    assert "podsDeletedAt" in status(kube)
    assert await controller.reconcile((NS, RUN)) is None  # nothing left to do


async def test_a_pod_lost_while_running_is_an_error_not_a_timeout(kube: FakeKube, clock: Clock) -> None:
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    await controller.reconcile((NS, RUN))
    kube.pods[(NS, "web-1-smoke")]["status"] = {"phase": "Running"}
    await controller.reconcile((NS, RUN))
    await kube.delete_pod(NS, "web-1-smoke")
    await controller.reconcile((NS, RUN))
    test = status(kube)["tests"][0]
    assert (test["phase"], test["reason"]) == ("Error", names.REASON_POD_LOST)


async def test_a_pod_missing_after_a_restart_is_planned_again_from_the_release_secret(
    kube: FakeKube, clock: Clock
) -> None:
    first = make_controller(kube, clock)
    await deploy(first, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    # kill -9 here: the run exists, its plan died with the process, no pod was created
    second = make_controller(kube, clock)
    await second.reconcile((NS, RUN))
    assert kube.created_pods == ["web-1-smoke"]
    await second.reconcile((NS, RUN))
    assert kube.created_pods == ["web-1-smoke"]  # never twice


async def test_a_missing_pod_whose_secret_is_gone_ends_not_planned(kube: FakeKube, clock: Clock) -> None:
    first = make_controller(kube, clock)
    await deploy(first, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    kube.secrets.clear()
    second = make_controller(kube, clock)
    await second.reconcile((NS, RUN))
    test = status(kube)["tests"][0]
    assert (test["phase"], test["reason"]) == ("Error", names.REASON_NOT_PLANNED)
    assert status(kube)["phase"] == "Error"


async def test_a_pod_the_api_refuses_ends_that_test_error_and_the_run_goes_on(
    kube: FakeKube, clock: Clock
) -> None:
    controller = make_controller(kube, clock)
    kube.refuse["web-1-smoke"] = (403, "Forbidden", 'serviceaccount "web-test" not found')
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke"), passing_hook("api")]))
    await controller.reconcile((NS, RUN))
    tests = {t["name"]: t for t in status(kube)["tests"]}
    assert (tests["smoke"]["phase"], tests["smoke"]["reason"]) == ("Error", "Forbidden")
    assert "serviceaccount" in tests["smoke"]["message"]
    assert tests["api"]["phase"] == "Pending"
    assert kube.created_pods == ["web-1-api"]
    assert names.EVENT_TEST_FAILED in kube.reasons()
    kube.finish_pod(NS, "web-1-api", exit_code=0)
    await controller.reconcile((NS, RUN))
    assert status(kube)["phase"] == "Error"  # the run ends: no hang on the refused test


async def test_a_status_conflict_stops_the_pass_before_events_and_deletes(
    kube: FakeKube, clock: Clock
) -> None:
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    await controller.reconcile((NS, RUN))
    events_before = len(kube.events)
    kube.finish_pod(NS, "web-1-smoke", exit_code=1)
    kube.conflict_next_patch = True
    assert await controller.reconcile((NS, RUN)) == 0.2
    assert len(kube.events) == events_before
    assert status(kube) == {}  # the conflicting write did not land
    await controller.reconcile((NS, RUN))
    assert status(kube)["phase"] == "Failed"


async def test_a_newer_revision_supersedes_the_active_run_and_its_pods_go(
    kube: FakeKube, clock: Clock
) -> None:
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(1, hooks=[passing_hook("smoke")]))
    await controller.reconcile((NS, RUN))
    await deploy(controller, kube, deployed_secret(2, hooks=[passing_hook("smoke")]))
    assert status(kube)["phase"] == "Superseded"
    await controller.reconcile((NS, RUN))
    assert "web-1-smoke" in kube.deleted_pods  # deleted after the status that explains it


async def test_a_release_without_tests_gets_a_no_tests_run_at_once(kube: FakeKube, clock: Clock) -> None:
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=[]))
    await controller.reconcile((NS, RUN))
    assert status(kube)["phase"] == RunPhase.NO_TESTS.value
    await controller.reconcile((NS, RUN))
    email = {c["type"]: c for c in status(kube)["conditions"]}[names.COND_EMAIL_SENT]
    assert email["reason"] == "NoTests"


async def test_a_run_whose_reconcile_keeps_raising_ends_error_with_the_exception_type(
    kube: FakeKube, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))

    async def broken(namespace: str, run: str) -> list[dict[str, Any]]:
        raise KeyError("metadata")

    monkeypatch.setattr(kube, "list_run_pods", broken)
    delays = [await controller.reconcile((NS, RUN)) for _ in range(MAX_RECONCILE_FAILURES)]
    assert delays[:3] == [2.0, 4.0, 8.0]  # backoff, not a fixed 10 s loop
    st = status(kube)
    assert (st["phase"], st["tests"][0]["reason"]) == ("Error", names.REASON_RECONCILE_FAILED)
    assert "KeyError" in st["message"]


async def test_a_crash_while_sending_sends_again_with_the_same_message_id(
    kube: FakeKube, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []

    async def fake_send(message: Any, *, settings: Settings) -> None:
        sent.append(str(message["Message-ID"]))

    monkeypatch.setattr("helm_e2e.reconcile.deliver_mail.send_email", fake_send)
    controller = make_controller(kube, clock, smtp_host="mail", mail_to="ops@example.com")
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    await controller.reconcile((NS, RUN))
    kube.finish_pod(NS, "web-1-smoke", exit_code=0)
    await controller.reconcile((NS, RUN))  # the final status and, in the same write, the intent: Sending
    assert status(kube)["phase"] == "Succeeded"
    email = {c["type"]: c for c in status(kube)["conditions"]}[names.COND_EMAIL_SENT]
    assert email["reason"] == names.MAIL_SENDING
    assert sent == []
    # kill -9 after the intent; a new operator finds Sending and sends
    restarted = make_controller(kube, clock, smtp_host="mail", mail_to="ops@example.com")
    await restarted.reconcile((NS, RUN))
    assert len(sent) == 1
    email = {c["type"]: c for c in status(kube)["conditions"]}[names.COND_EMAIL_SENT]
    assert email["reason"] == names.MAIL_SENT
    await restarted.reconcile((NS, RUN))
    assert len(sent) == 1  # recorded: never again


async def test_a_conflict_right_after_a_send_never_sends_twice(
    kube: FakeKube, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []

    async def fake_send(message: Any, *, settings: Settings) -> None:
        sent.append(str(message["Message-ID"]))
        kube.conflict_next_patch = True  # someone wrote the run meanwhile

    monkeypatch.setattr("helm_e2e.reconcile.deliver_mail.send_email", fake_send)
    controller = make_controller(kube, clock, smtp_host="mail", mail_to="ops@example.com")
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    await controller.reconcile((NS, RUN))
    kube.finish_pod(NS, "web-1-smoke", exit_code=0)
    for _ in range(4):
        await controller.reconcile((NS, RUN))
    assert len(sent) == 1


async def test_history_beyond_the_limit_is_pruned_when_a_run_completes(kube: FakeKube, clock: Clock) -> None:
    controller = make_controller(kube, clock, history_limit=2)
    for revision in (1, 2, 3):
        await deploy(controller, kube, deployed_secret(revision, hooks=[passing_hook("smoke")]))
        name = f"web-{revision}"
        await controller.reconcile((NS, name))
        kube.finish_pod(NS, f"{name}-smoke", exit_code=0)
        await controller.reconcile((NS, name))
    assert sorted(n for _, n in kube.runs) == ["web-2", "web-3"]


async def test_a_pod_that_violates_the_policy_is_never_created(kube: FakeKube, clock: Clock) -> None:
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    plan = controller.planner.kept((NS, RUN))
    assert plan is not None
    plan.tests[0].policy_violation = "spec.hostNetwork: host namespaces are not allowed"
    await controller.reconcile((NS, RUN))
    assert kube.created_pods == []
    test = status(kube)["tests"][0]
    assert (test["phase"], test["reason"]) == (TestPhase.ERROR.value, names.REASON_POLICY_VIOLATION)
    assert "spec.hostNetwork" in test["message"]


GRAFANA_SHAPE = [
    raw_hook("ServiceAccount", "web-test", ""),
    raw_hook("ConfigMap", "web-test", "data:\n  run.sh: echo ok\n"),
    raw_hook(
        "Pod",
        "web-test",
        "spec:\n  serviceAccountName: web-test\n  containers:\n  - name: t\n    image: bats\n"
        "    volumeMounts: [{name: tests, mountPath: /tests}]\n"
        "  volumes: [{name: tests, configMap: {name: web-test}}]\n",
    ),
]


async def test_a_charts_hook_objects_are_created_before_its_test_and_hook_succeeded_ones_go_after(
    kube: FakeKube, clock: Clock
) -> None:
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=GRAFANA_SHAPE))
    await controller.reconcile((NS, RUN))
    assert sorted(k for _, k, _ in kube.hook_objects) == ["ConfigMap", "ServiceAccount"]
    assert kube.created_pods == ["web-1-web-test"]
    pod = kube.pods[(NS, "web-1-web-test")]
    assert pod["spec"]["serviceAccountName"] == "web-test"  # the hook set's own account is allowed
    kube.finish_pod(NS, "web-1-web-test", exit_code=0)
    await controller.reconcile((NS, RUN))
    assert status(kube)["phase"] == "Succeeded"
    assert sorted(kube.deleted_hook_objects) == [("ConfigMap", "web-test"), ("ServiceAccount", "web-test")]


async def test_a_hook_object_whose_name_is_taken_ends_the_charts_tests_name_taken(
    kube: FakeKube, clock: Clock
) -> None:
    controller = make_controller(kube, clock)
    foreign = {
        "kind": "ConfigMap",
        "metadata": {"name": "web-test", "namespace": NS, "labels": {"owner": "someone"}},
    }
    kube.hook_objects[(NS, "ConfigMap", "web-test")] = foreign
    hooks = [raw_hook("ConfigMap", "web-test", "data: {}\n", policy="hook-succeeded"), *GRAFANA_SHAPE[2:]]
    hooks[1] = {**hooks[1], "manifest": hooks[1]["manifest"].replace("serviceAccountName: web-test\n  ", "")}
    await deploy(controller, kube, deployed_secret(hooks=hooks))
    await controller.reconcile((NS, RUN))
    test = status(kube)["tests"][0]
    assert (test["phase"], test["reason"]) == ("Error", "NameTaken")
    assert kube.created_pods == []


async def test_a_job_test_hook_runs_as_a_job_and_its_outcome_is_the_jobs(
    kube: FakeKube, clock: Clock
) -> None:
    controller = make_controller(kube, clock)
    job = raw_hook(
        "Job",
        "migrate-check",
        "spec:\n  backoffLimit: 2\n  template:\n    spec:\n      restartPolicy: Never\n"
        "      containers: [{name: t, image: busybox}]\n",
    )
    await deploy(controller, kube, deployed_secret(hooks=[job]))
    await controller.reconcile((NS, RUN))
    created = kube.jobs[(NS, "web-1-migrate-check")]
    assert created["spec"]["backoffLimit"] == 2
    clock.now += timedelta(seconds=START_WRITE_GRACE_SECONDS)
    await controller.reconcile((NS, RUN))
    assert status(kube)["tests"][0]["phase"] == "Pending"
    created["status"] = {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}
    await controller.reconcile((NS, RUN))
    assert status(kube)["phase"] == "Succeeded"


async def test_the_gate_holds_the_tests_until_the_rollout_is_done(kube: FakeKube, clock: Clock) -> None:
    controller = make_controller(kube, clock, readiness="rollout")
    doc_manifest = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
    secret = deployed_secret(hooks=[passing_hook("smoke")])
    doc = helm_release_doc()
    doc["manifest"] = doc_manifest
    doc["hooks"] = [passing_hook("smoke")]
    secret = helm_secret(doc, name="sh.helm.release.v1.web.v1")
    secret["metadata"]["labels"] = {"owner": "helm", "name": "web", "status": "deployed", "version": "1"}
    kube.runs.clear()
    await deploy(controller, kube, secret)
    kube.runs[(NS, RUN)]["metadata"]["creationTimestamp"] = NOW.isoformat()
    kube.rollout_state = (False, "", "deployment/web 1/3 updated")
    assert await controller.reconcile((NS, RUN)) == 1.0
    assert kube.created_pods == []
    ready = {c["type"]: c for c in status(kube)["conditions"]}["ReleaseReady"]
    assert (ready["reason"], ready["message"]) == ("WaitingForRollout", "deployment/web 1/3 updated")
    assert [k.ref for k in kube.rollout_checks[0]] == ["deployment/web"]
    kube.rollout_state = (True, "", "")
    await controller.reconcile((NS, RUN))
    assert kube.created_pods == ["web-1-smoke"]
    checks = len(kube.rollout_checks)
    clock.now += timedelta(seconds=START_WRITE_GRACE_SECONDS)
    await controller.reconcile((NS, RUN))  # the held write: the pod says the gate opened
    ready = {c["type"]: c for c in status(kube)["conditions"]}["ReleaseReady"]
    assert ready["reason"] == names.EVENT_ROLLED_OUT
    assert len(kube.rollout_checks) == checks  # no rollout looked at again
