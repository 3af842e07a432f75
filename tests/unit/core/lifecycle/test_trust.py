"""An E2ERun is the operator's own record (core/lifecycle/trust.py): forged or foreign runs end Refused having
touched nothing of any release; a run's report goes only to allowed domains; a gated run ends within its
deadline, planned once; what the controller remembers is bounded."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
import runs
from controller_harness import NS, RUN, deploy, deployed_secret, make_controller, passing_hook, status
from fake_kube import NOW, Clock, FakeKube
from helm_encoding import helm_release_doc, helm_secret

from helm_e2e import errors
from helm_e2e.core.lifecycle import trust
from helm_e2e.core.model import names
from helm_e2e.core.model.bounded import BoundedSet
from helm_e2e.core.model.release import Hook, Trigger
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import RunPhase, RunStatus
from helm_e2e.core.outcomes.outbox import OutboxPolicy, decide_mail
from helm_e2e.core.plan import decode_and_plan as planjob
from helm_e2e.core.sources.helm_secret import check_test_hook_yaml


def run_of(namespace: str, release_namespace: str, secret_uid: str = "uid-1", **status: Any) -> Run:  # noqa: S107
    release = {
        "name": "pay",
        "namespace": release_namespace,
        "revision": 1,
        "chart": "pay",
        "chart_version": "1.0.0",
        "trigger": Trigger.INSTALL,
        "secret_uid": secret_uid,
    }
    return runs.make_run(release=release, namespace=namespace, uid="", status=RunStatus(**status))


def test_a_run_is_worked_on_only_in_its_releases_namespace_and_with_the_uid_of_its_secret() -> None:
    assert trust.refuse_run(run_of("vic", "vic")) is None
    assert "not its own namespace" in (trust.refuse_run(run_of("att", "vic")) or "")
    assert "no release Secret uid" in (trust.refuse_run(run_of("vic", "vic", secret_uid="")) or "")
    # a run an older operator made and already started is left to finish
    started = run_of("vic", "vic", secret_uid="", phase=RunPhase.RUNNING)
    assert trust.refuse_run(started) is None
    assert trust.refuse_secret(run_of("vic", "vic"), {"metadata": {"uid": "uid-1"}}) is None
    assert "uid differs" in (trust.refuse_secret(run_of("vic", "vic"), {"metadata": {"uid": "x"}}) or "")


def forged(kube: FakeKube, namespace: str, name: str, release_namespace: str, secret_uid: str) -> None:
    """An E2ERun written by a tenant: every field as the operator would write it, but for someone else."""
    body = {
        "apiVersion": names.API_VERSION,
        "kind": names.RUN_KIND,
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "resourceVersion": "1"},
        "spec": {
            "release": {
                "name": "web",
                "namespace": release_namespace,
                "revision": 1,
                "chart": "web",
                "chartVersion": "1.0.0",
                "trigger": "install",
                "secretUid": secret_uid,
            },
            "tests": [{"name": "smoke", "source": "hook", "timeoutSeconds": 60}],
            "report": {"to": ["attacker@evil.example"]},
            "onFailure": "rollback",
            "hookObjects": [{"kind": "Secret", "name": "web-credentials"}],
        },
    }
    kube.runs[(namespace, name)] = body


@pytest.mark.parametrize(
    ("namespace", "release_namespace", "secret_uid", "why"),
    [
        ("att", NS, "uid-sh.helm.release.v1.web.v1", "not its own namespace"),  # the victim's own uid
        (NS, NS, "uid-of-something-else", "uid differs"),
        (NS, NS, "", "no release Secret uid"),
    ],
)
async def test_a_forged_run_ends_refused_having_touched_nothing(
    kube: FakeKube, clock: Clock, namespace: str, release_namespace: str, secret_uid: str, why: str
) -> None:
    controller = make_controller(kube, clock, smtp_host="mail", mail_to="ops@example.com")
    secret = deployed_secret(hooks=[passing_hook("smoke")])
    kube.secrets[(NS, secret["metadata"]["name"])] = secret  # the victim's release, never planned here
    forged(kube, namespace, "web-9", release_namespace, secret_uid)
    for _ in range(3):
        await controller.reconcile((namespace, "web-9"))
    got = kube.runs[(namespace, "web-9")]["status"]
    assert got["phase"] == "Refused"
    assert why in got["message"]
    assert kube.created_pods == []
    assert kube.hook_objects == {}
    assert kube.deleted_hook_objects == []
    assert [e[2] for e in kube.events] == [names.REASON_REFUSED]
    assert "EmailSent" not in {c["type"] for c in got.get("conditions", [])}  # no report, ever
    assert "rollback" not in got


async def test_the_operators_own_run_is_worked_on_as_before(kube: FakeKube, clock: Clock) -> None:
    controller = make_controller(kube, clock)
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    assert kube.runs[(NS, RUN)]["spec"]["release"]["secretUid"] == "uid-sh.helm.release.v1.web.v1"
    controller.planner.forget((NS, RUN))  # as after a restart: planned again from the Secret, uid checked
    await controller.reconcile((NS, RUN))
    assert kube.created_pods == ["web-1-smoke"]


def test_a_runs_own_recipients_are_checked_again_when_the_mail_goes_out() -> None:
    run = run_of(NS, NS, phase=RunPhase.FAILED)
    run.spec.report.to = ["dev@example.com", "attacker@evil.example", "not an address"]
    policy = OutboxPolicy(
        mail_to=("ops@example.com",),
        report_cancelled=False,
        smtp_enabled=True,
        mail_allowed_domains=frozenset({"example.com"}),
    )
    assert decide_mail(run, policy) == ("", ["ops@example.com", "dev@example.com"])


def gated_secret() -> dict[str, Any]:
    doc = helm_release_doc()
    doc["manifest"] = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
    doc["hooks"] = [passing_hook("smoke")]
    secret = helm_secret(doc, name="sh.helm.release.v1.web.v1")
    secret["metadata"]["labels"] = {"owner": "helm", "name": "web", "status": "deployed", "version": "1"}
    return secret


async def test_a_gated_run_ends_at_its_deadline_and_is_planned_once(
    kube: FakeKube, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    plans: list[str] = []
    real = planjob.decode_and_plan

    def counted(secret: Any, **kw: Any) -> Any:
        plans.append(secret["metadata"]["name"])
        return real(secret, **kw)

    monkeypatch.setattr(planjob, "decode_and_plan", counted)
    controller = make_controller(
        kube, clock, readiness="rollout", ready_timeout_seconds=600, run_deadline_seconds=60
    )
    await deploy(controller, kube, gated_secret())
    assert kube.runs[(NS, RUN)]["spec"]["readiness"]["timeoutSeconds"] == 60  # capped by the deadline
    kube.runs[(NS, RUN)]["metadata"]["creationTimestamp"] = NOW.isoformat()
    kube.rollout_state = (False, "", "deployment/web 1/3 updated")
    for _ in range(5):
        await controller.reconcile((NS, RUN))
        clock.now += timedelta(seconds=10)
    assert status(kube)["phase"] == "Pending"  # still waiting at the gate
    # a spec from before the cap (600 s) still ends at the run's deadline
    kube.runs[(NS, RUN)]["spec"]["readiness"]["timeoutSeconds"] = 600
    clock.now = NOW + timedelta(seconds=61)
    await controller.reconcile((NS, RUN))
    got = status(kube)
    assert got["phase"] == "Error"
    ready = {c["type"]: c for c in got["conditions"]}["ReleaseReady"]
    assert ready["reason"] == names.REASON_RELEASE_NOT_READY
    assert "not rolled out within 60s" in ready["message"]
    assert plans == ["sh.helm.release.v1.web.v1"]  # the intake's plan, kept: never decoded per pass
    assert kube.created_pods == []


def test_the_test_hooks_yaml_of_one_release_is_bounded() -> None:
    hook = Hook(name="t", kind="Pod", manifest="x" * 600, events=["test"])
    other = Hook(name="i", kind="Job", manifest="x" * 5000, events=["pre-install"])
    check_test_hook_yaml([hook, hook, other], limit=1500)  # only test hooks count
    with pytest.raises(errors.ReleaseDecodeError, match="1800 bytes of YAML, over the limit of 1500"):
        check_test_hook_yaml([hook, hook, hook], limit=1500)


def test_what_the_controller_remembers_forgets_the_oldest_past_its_bound() -> None:
    seen: BoundedSet[str] = BoundedSet(3)
    for key in "abcd":
        seen.add(key)
    assert len(seen) == 3
    assert "a" not in seen
    assert "d" in seen
    seen.add("b")  # re-added: the newest again
    seen.add("e")
    assert "c" not in seen
    assert "b" in seen


async def test_a_bad_secret_rewritten_many_times_is_warned_about_once(kube: FakeKube, clock: Clock) -> None:
    controller = make_controller(kube, clock)
    corrupt = deployed_secret()
    corrupt["data"]["release"] = "bm90IGEgcmVsZWFzZQ=="
    for version in range(50):
        rewritten = copy.deepcopy(corrupt)
        rewritten["metadata"]["resourceVersion"] = str(version)
        await deploy(controller, kube, rewritten)
    assert kube.reasons() == [names.EVENT_RELEASE_DECODE_FAILED]
    assert len(controller._warned) == 1


async def test_a_hand_made_run_the_operator_cannot_read_ends_refused_and_never_blocks_the_release(
    kube: FakeKube, clock: Clock
) -> None:
    controller = make_controller(kube, clock)
    kube.runs[(NS, "web-junk")] = {
        "apiVersion": names.API_VERSION,
        "kind": names.RUN_KIND,
        "metadata": {
            "name": "web-junk",
            "namespace": NS,
            "uid": "u",
            "resourceVersion": "1",
            "labels": {names.RELEASE_LABEL: "web"},
        },
        "spec": {"release": {"name": "web", "namespace": NS}},  # no revision, chart, trigger...
    }
    for _ in range(3):
        assert await controller.reconcile((NS, "web-junk")) is None
    got = kube.runs[(NS, "web-junk")]["status"]
    assert got["phase"] == "Refused"
    assert "not one the helm-e2e operator writes (invalid: release.chart" in got["message"]
    assert [e[2] for e in kube.events] == [names.REASON_REFUSED]  # once, not per pass
    await deploy(controller, kube, deployed_secret(hooks=[passing_hook("smoke")]))
    await controller.reconcile((NS, RUN))  # the release's own runs are listed beside it, unharmed
    assert kube.created_pods == ["web-1-smoke"]
