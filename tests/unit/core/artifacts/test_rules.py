"""core/rules.py: the collector in the pod, safe names, what a finished test records, attachments,
the download ticket."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helm_e2e.core.artifacts import rules
from helm_e2e.core.model import names
from helm_e2e.core.model.run_status import ArtifactFile, PytestFailure, RunStatus, TestPhase, TestResult

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SPEC = rules.CollectorSpec(
    image="ghcr.io/helm-e2e/helm-e2e:0.2.0",
    directory="/artifacts",
    upload_url="http://helm-e2e.ops.svc:8081/v1/uploads",
    token="tok",
    max_bytes=1000,
)


def _pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "spec": {
            "initContainers": [{"name": "jwt-setup", "image": "jwt"}],
            "containers": [
                {"name": "test", "image": "t", "env": [{"name": "A", "value": "1"}]},
                {"name": "own", "image": "o", "volumeMounts": [{"name": "x", "mountPath": "/artifacts"}]},
            ],
        },
    }


def test_the_collector_is_the_first_init_container_a_native_sidecar_holding_the_token() -> None:
    pod = _pod()
    before = copy.deepcopy(pod)
    out = rules.inject_collector(pod, "Pod", SPEC)
    assert pod == before  # the input is never changed
    collector, jwt = out["spec"]["initContainers"]
    assert (collector["name"], collector["restartPolicy"], jwt["name"]) == (
        names.COLLECTOR_CONTAINER,
        "Always",
        "jwt-setup",
    )
    env = {e["name"]: e["value"] for e in collector["env"]}
    assert env == {
        names.ARTIFACTS_DIR_ENV: "/artifacts",
        names.UPLOAD_URL_ENV: SPEC.upload_url,
        names.UPLOAD_TOKEN_ENV: "tok",
    }
    assert collector["volumeMounts"] == [
        {"name": names.ARTIFACTS_VOLUME, "mountPath": "/artifacts", "readOnly": True}
    ]
    assert collector["securityContext"]["runAsNonRoot"] is True
    assert collector["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    (volume,) = out["spec"]["volumes"]
    assert volume == {"name": names.ARTIFACTS_VOLUME, "emptyDir": {"sizeLimit": "2000"}}


def test_every_test_container_gets_the_directory_but_only_the_collector_gets_the_token() -> None:
    out = rules.inject_collector(_pod(), "Pod", SPEC)
    jwt = out["spec"]["initContainers"][1]
    test, own = out["spec"]["containers"]
    for container in (jwt, test, own):
        assert {"name": names.ARTIFACTS_DIR_ENV, "value": "/artifacts"} in container["env"]
        assert all(e["name"] != names.UPLOAD_TOKEN_ENV for e in container["env"])
    assert {"name": "A", "value": "1"} in test["env"]
    assert {"name": names.ARTIFACTS_VOLUME, "mountPath": "/artifacts"} in test["volumeMounts"]
    assert own["volumeMounts"] == [{"name": "x", "mountPath": "/artifacts"}]  # the test's own volume wins


def test_a_job_gets_the_collector_in_its_pod_template_and_twice_is_once() -> None:
    job = {"kind": "Job", "spec": {"template": {"spec": {"containers": [{"name": "t", "image": "i"}]}}}}
    once = rules.inject_collector(job, "Job", SPEC)
    twice = rules.inject_collector(once, "Job", SPEC)
    assert once == twice
    assert once["spec"]["template"]["spec"]["initContainers"][0]["name"] == names.COLLECTOR_CONTAINER


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("junit.xml", True),
        ("screens/login page (1).png", True),
        ("a/b/c.har", True),
        ("", False),
        ("/etc/passwd", False),
        ("../x", False),
        ("a/../x", False),
        ("a//x", False),
        ("./x", False),
        ("a\\x", False),
        ("x\x00y", False),
        ("x\ny", False),
        ("$(reboot)", False),
        ("a" * 256, False),
    ],
)
def test_member_names_are_plain_relative_paths(name: str, ok: bool) -> None:
    why = rules.check_member_name(name)
    assert (why == "") is ok
    assert name not in why or not name  # a refusal never echoes the name


@given(st.text(max_size=80))
def test_a_name_that_passes_never_escapes_the_directory(name: str) -> None:
    if rules.check_member_name(name) == "":
        assert not name.startswith("/")
        assert ".." not in name.split("/")


def test_a_test_records_its_manifest_once_when_it_becomes_final() -> None:
    files = [ArtifactFile(name="junit.xml", size=10, sha256="a" * 64)]
    manifest = rules.Manifest(
        bundle="b", files=files, failures=[PytestFailure(id="t.py::test_x", message="boom")]
    )
    before = RunStatus(
        tests=[
            TestResult(name="api", phase=TestPhase.RUNNING),
            TestResult(name="old", phase=TestPhase.FAILED),
        ]
    )
    after = RunStatus(
        tests=[TestResult(name="api", phase=TestPhase.FAILED), TestResult(name="old", phase=TestPhase.FAILED)]
    )
    out = rules.record(before, after, {"api": manifest, "old": manifest})
    api, old = out.tests
    assert api.artifacts == files
    assert api.failures[0].id == "t.py::test_x"
    assert old.artifacts == []  # final before: its record stands
    refused = rules.record(before, after, {"api": rules.Manifest(refused="over quota")})
    assert refused.tests[0].artifacts_message == "over quota"
    assert rules.record(before, after, {}) is after


def test_attachments_take_the_smallest_files_first_and_keep_the_reports_order() -> None:
    def f(name: str, size: int) -> ArtifactFile:
        return ArtifactFile(name=name, size=size, sha256="0" * 64)

    files = [("api", f("big.har", 900)), ("api", f("junit.xml", 100)), ("ui", f("shot.png", 300))]
    attached, listed = rules.choose_attachments(files, budget=500)
    assert [a.filename for a in attached] == ["api_junit.xml", "ui_shot.png"]
    assert [a.file.name for a in listed] == ["big.har"]
    nothing, everything = rules.choose_attachments(files, budget=0)
    assert (nothing, len(everything)) == ([], 3)


def test_a_ticket_matches_only_its_nonce_and_only_for_a_few_minutes() -> None:
    annotation = rules.ticket_annotation("nonce-1", NOW)
    assert "nonce-1" not in annotation  # only its digest is on the run
    assert rules.ticket_matches(annotation, "nonce-1", NOW + timedelta(seconds=30))
    assert not rules.ticket_matches(annotation, "nonce-2", NOW)
    assert not rules.ticket_matches(annotation, "", NOW)
    assert not rules.ticket_matches(annotation, "nonce-1", NOW + timedelta(minutes=6))
    assert not rules.ticket_matches("garbage", "nonce-1", NOW)
    assert not rules.ticket_matches("", "nonce-1", NOW)


def test_the_collector_exiting_badly_never_turns_a_passed_test_into_an_init_failure() -> None:
    from helm_e2e.core.model.run import TestSource
    from helm_e2e.core.results.pod_result import log_container, result_from_pod

    term = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": "2026-11-27T12:00:00Z"}}
    pod = rules.inject_collector({"spec": {"containers": [{"name": "t", "image": "i"}]}}, "Pod", SPEC)
    pod["status"] = {
        "phase": "Succeeded",
        "initContainerStatuses": [
            {"name": names.COLLECTOR_CONTAINER, "state": {"terminated": {"exitCode": 143}}}
        ],
        "containerStatuses": [{"name": "t", "state": term}],
    }
    result = result_from_pod(TestSource(name="t", source="hook", timeout_seconds=9), pod, pod_name="p")
    assert (result.phase, result.exit_code) == (TestPhase.SUCCEEDED, 0)
    assert log_container(pod) == "t"
