"""Regressions through the executor: a fake Kube port, three revisions (pass, fail, pass), the reports sent."""

from __future__ import annotations

import json
from typing import Any

from controller_harness import NS, passing_hook, status
from fake_kube import Clock, FakeKube
from helm_encoding import helm_release_doc, helm_secret

from helm_e2e.core.model import names
from helm_e2e.reconcile.controller import Controller
from helm_e2e.settings import Settings


def make_controller(kube: FakeKube, clock: Clock) -> Controller:
    settings = Settings(smtp_host="mail", mail_to="ops@example.com", pod_ttl_seconds=60, resync_seconds=5)
    return Controller(settings=settings, kube=kube, clock=clock)


def pytest_failing(kube: FakeKube, pod: str, *ids: str) -> None:
    """The pod's container ended as the helm-e2e pytest plugin leaves it: its summary as the message."""
    summary = {"passed": 3, "failed": len(ids), "firstFailures": list(ids)}
    terminated = kube.pods[(NS, pod)]["status"]["containerStatuses"][0]["state"]["terminated"]
    terminated["message"] = json.dumps(summary)


async def deploy_and_finish(
    controller: Controller, kube: FakeKube, revision: int, *, api_fails: tuple[str, ...] = ()
) -> str:
    for secret in kube.secrets.values():
        secret["metadata"]["labels"]["status"] = "superseded"
    doc = helm_release_doc(revision=revision, hooks=[passing_hook("smoke"), passing_hook("api")])
    doc["config"] = {"image": {"tag": f"2.{revision}.0"}}
    secret = helm_secret(doc, name=f"sh.helm.release.v1.web.v{revision}")
    kube.secrets[(NS, secret["metadata"]["name"])] = secret
    await controller.on_release_secret("ADDED", secret)
    run = f"web-{revision}"
    await controller.reconcile((NS, run))
    kube.finish_pod(NS, f"{run}-smoke", exit_code=0)
    kube.finish_pod(NS, f"{run}-api", exit_code=1 if api_fails else 0)
    if api_fails:
        pytest_failing(kube, f"{run}-api", *api_fails)
    for _ in range(4):  # final status (with the regression), report intent, send
        await controller.reconcile((NS, run))
    return run


async def test_pass_fail_pass_records_new_then_fixed_failures_and_the_reports_say_so(
    kube: FakeKube, clock: Clock, sent: list[Any]
) -> None:
    controller = make_controller(kube, clock)
    first = await deploy_and_finish(controller, kube, 1)
    assert "regression" not in status(kube, first)  # nothing before it
    failing = await deploy_and_finish(controller, kube, 2, api_fails=("tests/test_api.py::test_token",))
    assert status(kube, failing)["regression"] == {
        "comparedWith": "web-1",
        "revision": 1,
        "newlyFailing": ["api::tests/test_api.py::test_token"],
        "fixed": [],
        "stillFailing": [],
    }
    fixed = await deploy_and_finish(controller, kube, 3)
    assert status(kube, fixed)["regression"]["fixed"] == ["api::tests/test_api.py::test_token"]
    assert status(kube, fixed)["regression"]["newlyFailing"] == []

    subjects = [str(m["Subject"]) for m in sent]
    assert [s.rsplit(": ", 1)[1] for s in subjects] == ["PASSED 2/2", "FAILED 1/2 (1 new)", "PASSED 2/2"]
    html = sent[1].get_body(preferencelist=("html",)).get_content()
    assert ">new</span>" in html
    for bar in ('title="r1 · image 2.1.0 · Succeeded 2/2', 'title="r2 · image 2.2.0 · Failed 1/2'):
        assert bar in html
    text = sent[2].get_body(preferencelist=("plain",)).get_content()
    assert "History     r1 ✓ " in text
    assert " · r3 ✓ " in text
    assert "FIXED      api::tests/test_api.py::test_token" in text


async def test_the_status_write_that_ends_a_run_already_carries_its_regression(
    kube: FakeKube, clock: Clock, sent: list[Any]
) -> None:
    controller = make_controller(kube, clock)
    await deploy_and_finish(controller, kube, 1)
    kube.status_patches.clear()
    await deploy_and_finish(controller, kube, 2, api_fails=("tests/test_api.py::test_token",))
    final = next(p for name, p in kube.status_patches if name == "web-2" and p.get("phase") == "Failed")
    assert final["regression"]["newlyFailing"] == ["api::tests/test_api.py::test_token"]
    assert "conditions" in final
    # the same write records the report's intent (one write less per run); the report reads the status
    email = next(c for c in final["conditions"] if c["type"] == names.COND_EMAIL_SENT)
    assert email["reason"] == names.MAIL_SENDING
