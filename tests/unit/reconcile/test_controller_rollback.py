"""Rollback on failure through the executor: a fake Kube port and a fake `helm rollback` that writes the
revision Helm would write, so the rollback revision's own run follows naturally."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from controller_harness import NS, passing_hook, status
from fake_helm import FakeHelm
from fake_kube import Clock, FakeKube
from helm_encoding import helm_release_doc, helm_secret

from helm_e2e.clients.helm import Helm, HelmPort
from helm_e2e.core.model import names
from helm_e2e.reconcile.controller import Controller
from helm_e2e.settings import Settings

OPT_IN = {names.ON_FAILURE_ANNOTATION: "rollback"}


@pytest.fixture
def helm(kube: FakeKube) -> FakeHelm:
    fake = FakeHelm(kube)
    fake.doc = {"hooks": [passing_hook("smoke")], "chart": chart(OPT_IN)}
    return fake


def chart(annotations: dict[str, str]) -> dict[str, Any]:
    meta = {"name": "web-chart", "version": "1.2.3", "appVersion": "2.0.0", "annotations": annotations}
    return {"metadata": meta, "values": {"image": {"tag": ""}}}


def make_controller(kube: FakeKube, clock: Clock, helm: FakeHelm, **settings: Any) -> Controller:
    base: dict[str, Any] = {"smtp_host": "mail", "mail_to": "ops@example.com", "pod_ttl_seconds": 60}
    return Controller(settings=Settings(**{**base, **settings}), kube=kube, clock=clock, helm=helm)


async def upgrade(
    controller: Controller, kube: FakeKube, revision: int, *, exit_code: int, opt_in: bool = True
) -> str:
    """Deploy `revision` (the older one superseded, as Helm does) and let its run finish with `exit_code`."""
    for secret in kube.secrets.values():
        if secret["metadata"]["labels"]["status"] == "deployed":
            secret["metadata"]["labels"]["status"] = "superseded"
    doc = helm_release_doc(
        revision=revision, hooks=[passing_hook("smoke")], chart=chart(OPT_IN if opt_in else {})
    )
    secret = helm_secret(doc, name=f"sh.helm.release.v1.web.v{revision}")
    kube.secrets[(NS, secret["metadata"]["name"])] = secret
    await controller.on_release_secret("ADDED", secret)
    return await finish(controller, kube, f"web-{revision}", "smoke", exit_code=exit_code)


async def finish(controller: Controller, kube: FakeKube, run: str, test: str, *, exit_code: int) -> str:
    await controller.reconcile((NS, run))
    kube.finish_pod(NS, f"{run}-{test}", exit_code=exit_code)
    await settle(controller, run)
    return run


async def settle(controller: Controller, run: str) -> None:
    for _ in range(8):  # final status, rollback decision, intent + helm, outcome, report intent, send
        await controller.reconcile((NS, run))


def condition(kube: FakeKube, run: str) -> dict[str, Any] | None:
    return {c["type"]: c for c in status(kube, run).get("conditions", [])}.get(names.COND_ROLLED_BACK)


async def take_rollback_revision(controller: Controller, kube: FakeKube, *, exit_code: int) -> str:
    """The operator's watch sees the revision helm wrote: its run, trigger rollback, finishes."""
    newest = max(kube.secrets, key=lambda k: int(k[1].rpartition(".v")[2]))
    await controller.on_release_secret("ADDED", kube.secrets[newest])
    revision = newest[1].rpartition(".v")[2]
    return await finish(controller, kube, f"web-{revision}", "smoke", exit_code=exit_code)


def test_the_fake_helm_has_the_ports_signature() -> None:
    for impl in (Helm, FakeHelm):
        assert inspect.signature(impl.rollback) == inspect.signature(HelmPort.rollback)


async def test_pass_pass_fail_rolls_back_to_two_once_reports_it_and_the_rollback_revision_gets_its_run(
    kube: FakeKube, clock: Clock, helm: FakeHelm, sent: list[Any]
) -> None:
    controller = make_controller(kube, clock, helm)
    await upgrade(controller, kube, 1, exit_code=0)
    await upgrade(controller, kube, 2, exit_code=0)
    await upgrade(controller, kube, 3, exit_code=1)
    assert helm.calls == [(NS, "web", 2)]
    rolled = condition(kube, "web-3")
    assert rolled is not None
    assert (rolled["status"], rolled["reason"]) == ("True", names.REASON_ROLLED_BACK)
    assert status(kube, "web-3")["rollback"] == {"target": 2, "attempts": 1, "revision": 4}
    assert (
        "web-3",
        "Normal",
        names.EVENT_ROLLED_BACK,
        "rolled back to revision 2 (revision 4)",
    ) in kube.events
    report = sent[-1]
    assert report["Subject"].endswith("FAILED 0/1 (1 new), rolled back to r2")
    assert "rolled back to revision 2" in report.get_body(("plain",)).get_content()
    order = [p[1].get("conditions", []) for p in kube.status_patches if p[0] == "web-3"]
    rolled_at = next(
        i for i, c in enumerate(order) if any(x["type"] == "RolledBack" and x["status"] == "True" for x in c)
    )
    sending_at = next(i for i, c in enumerate(order) if any(x["type"] == "EmailSent" for x in c))
    assert rolled_at < sending_at  # the e-mail waits for the outcome

    run4 = await take_rollback_revision(controller, kube, exit_code=0)
    assert kube.runs[(NS, run4)]["spec"]["release"]["trigger"] == "rollback"
    assert status(kube, run4)["phase"] == "Succeeded"
    await settle(controller, "web-3")
    assert helm.calls == [(NS, "web", 2)]  # never twice


async def test_without_the_opt_in_a_failed_revision_is_left_alone(
    kube: FakeKube, clock: Clock, helm: FakeHelm, sent: list[Any]
) -> None:
    controller = make_controller(kube, clock, helm)
    await upgrade(controller, kube, 1, exit_code=0, opt_in=False)
    await upgrade(controller, kube, 2, exit_code=1, opt_in=False)
    assert helm.calls == []
    assert condition(kube, "web-2") is None
    assert kube.runs[(NS, "web-2")]["spec"]["onFailure"] == "none"
    assert len(sent) == 2


async def test_the_global_setting_opts_every_release_in(
    kube: FakeKube, clock: Clock, helm: FakeHelm, sent: list[Any]
) -> None:
    controller = make_controller(kube, clock, helm, rollback="on-failure")
    await upgrade(controller, kube, 1, exit_code=0, opt_in=False)
    await upgrade(controller, kube, 2, exit_code=1, opt_in=False)
    assert kube.runs[(NS, "web-2")]["spec"]["onFailure"] == "rollback"
    assert helm.calls == [(NS, "web", 1)]


async def test_a_failing_first_revision_has_nothing_to_roll_back_to_and_the_report_says_so(
    kube: FakeKube, clock: Clock, helm: FakeHelm, sent: list[Any]
) -> None:
    controller = make_controller(kube, clock, helm)
    await upgrade(controller, kube, 1, exit_code=1)
    assert helm.calls == []
    rolled = condition(kube, "web-1")
    assert rolled is not None
    assert (rolled["status"], rolled["reason"]) == ("False", names.REASON_NO_PASSING_REVISION)
    assert "no revision before 1 passed its tests" in sent[-1].get_body(("plain",)).get_content()
    assert ("web-1", "Warning", names.EVENT_ROLLED_BACK, rolled["message"]) in kube.events


async def test_a_failing_rollback_revision_never_rolls_back_again(
    kube: FakeKube, clock: Clock, helm: FakeHelm, sent: list[Any]
) -> None:
    controller = make_controller(kube, clock, helm)
    await upgrade(controller, kube, 1, exit_code=0)
    await upgrade(controller, kube, 2, exit_code=1)
    assert helm.calls == [(NS, "web", 1)]
    run3 = await take_rollback_revision(controller, kube, exit_code=1)
    assert helm.calls == [(NS, "web", 1)]
    rolled = condition(kube, run3)
    assert rolled is not None
    assert rolled["reason"] == names.REASON_ROLLBACK_REVISION


async def test_a_helm_failure_is_recorded_once_without_a_retry_and_reported(
    kube: FakeKube, clock: Clock, helm: FakeHelm, sent: list[Any]
) -> None:
    controller = make_controller(kube, clock, helm)
    await upgrade(controller, kube, 1, exit_code=0)
    helm.error = 'Error: secrets "x" is forbidden: User "system:serviceaccount:ops:helm-e2e" cannot get'
    await upgrade(controller, kube, 2, exit_code=1)
    assert helm.calls == [(NS, "web", 1)]
    rolled = condition(kube, "web-2")
    assert rolled is not None
    assert (rolled["status"], rolled["reason"]) == ("False", names.REASON_ROLLBACK_FAILED)
    assert "is forbidden" in rolled["message"]
    assert "rollback to revision 1 failed" in sent[-1].get_body(("plain",)).get_content()


async def test_a_status_conflict_right_after_helm_never_calls_it_twice(
    kube: FakeKube, clock: Clock, helm: FakeHelm, sent: list[Any]
) -> None:
    controller = make_controller(kube, clock, helm)
    await upgrade(controller, kube, 1, exit_code=0)

    def someone_writes() -> None:
        kube.conflict_next_patch = True

    helm.during = someone_writes
    await upgrade(controller, kube, 2, exit_code=1)
    assert helm.calls == [(NS, "web", 1)]
    rolled = condition(kube, "web-2")
    assert rolled is not None
    assert rolled["status"] == "True"


class Killed(BaseException):
    """The operator process dies (kill -9) inside the helm call."""


@pytest.mark.parametrize("helm_ran", [True, False], ids=["helm-had-written", "helm-had-not-run"])
async def test_an_operator_killed_between_intent_and_outcome_never_rolls_back_twice(
    kube: FakeKube, clock: Clock, helm: FakeHelm, sent: list[Any], helm_ran: bool
) -> None:
    controller = make_controller(kube, clock, helm)
    await upgrade(controller, kube, 1, exit_code=0)

    def die() -> None:
        if helm_ran:
            helm.write_rollback(NS, "web", 1)
        raise Killed

    helm.during = die
    with pytest.raises(Killed):
        await upgrade(controller, kube, 2, exit_code=1)
    rolled = condition(kube, "web-2")
    assert rolled is not None
    assert (rolled["status"], rolled["reason"]) == ("Unknown", names.REASON_ROLLING_BACK)
    assert len(sent) == 1  # revision 1's: revision 2's report waits for the outcome

    helm.during = None
    restarted = make_controller(kube, clock, helm)
    await settle(restarted, "web-2")
    rolled = condition(kube, "web-2")
    assert rolled is not None
    assert rolled["status"] == "True"
    assert len(helm.calls) == (1 if helm_ran else 2)  # the trace is recognised; without one, one retry
    assert sorted(name for _, name in kube.secrets) == [f"sh.helm.release.v1.web.v{r}" for r in (1, 2, 3)]
    assert len(sent) == 2  # one rollback revision, one report of revision 2
