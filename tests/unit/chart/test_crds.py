"""The CRDs in crds/ describe exactly what the operator's models write, and the chart ships them unchanged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from repo_paths import ROOT

from helm_e2e.core.model.release import OnFailure, Trigger
from helm_e2e.core.model.run import ReleaseRef, ReportSpec, RequestTrigger, RunRequest, RunSpec, TestSource
from helm_e2e.core.model.run_status import (
    ArtifactFile,
    AttemptRecord,
    Condition,
    ContainerDiagnosis,
    Diagnostics,
    NotificationState,
    NotificationStatus,
    PodEventRecord,
    PytestFailure,
    PytestSummary,
    Regression,
    RollbackRecord,
    RunPhase,
    RunStatus,
    Summary,
    TestPhase,
    TestResult,
)
from helm_e2e.core.model.suite import SuiteSchedule, SuiteSpec, SuiteTest

CRDS = ROOT / "crds"
RUNS = "e2eruns.helm-e2e.dev.yaml"
SUITES = "e2esuites.helm-e2e.dev.yaml"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _crd(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((CRDS / name).read_text())
    return doc


def _version(name: str) -> dict[str, Any]:
    (version,) = _crd(name)["spec"]["versions"]
    return version  # type: ignore[no-any-return]


def _schema(name: str) -> dict[str, Any]:
    return _version(name)["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def _undeclared(value: object, schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths in `value` that the structural schema does not declare (the apiserver would prune them)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict):
        if "additionalProperties" in schema:
            extra = schema["additionalProperties"]
            return [p for k, v in value.items() for p in _undeclared(v, extra, f"{path}.{k}")]
        props = schema.get("properties", {})
        missing = [f"{path}.{k}" for k in value if k not in props]
        nested = [p for k, v in value.items() if k in props for p in _undeclared(v, props[k], f"{path}.{k}")]
        return missing + nested
    if isinstance(value, list):
        items = schema.get("items", {})
        return [p for i, v in enumerate(value) for p in _undeclared(v, items, f"{path}[{i}]")]
    return []


def _full_status() -> dict[str, Any]:
    """A status with every optional field set, as the operator writes it."""
    return RunStatus(
        phase=RunPhase.FAILED,
        started_at=NOW,
        completed_at=NOW,
        message="1 of 1 tests failed",
        summary=Summary(total=1, failed=1, flaky=1),
        email_attempts=1,
        email_next_attempt_at=NOW,
        pods_deleted_at=NOW,
        notifications=[
            NotificationStatus(
                target="ops-events",
                state=NotificationState.RETRYING,
                type="cloudevents",
                attempts=1,
                next_attempt_at=NOW,
                message="attempt 1: webhook ops-events (cloudevents): answered 503",
                last_transition_time=NOW,
            ),
            NotificationStatus(
                target="@mail",
                state=NotificationState.SKIPPED,
                type="email",
                reason="NoRecipients",
                message="not sent: NoRecipients",
                last_transition_time=NOW,
            ),
        ],
        rollback=RollbackRecord(target=2, attempts=1, revision=4),
        regression=Regression(
            compared_with="shop-2", revision=2, newly_failing=["a"], fixed=["b"], still_failing=["c"]
        ),
        tests=[
            TestResult(
                name="api-smoke",
                pod="shop-3-api-smoke",
                phase=TestPhase.FAILED,
                exit_code=1,
                reason="Error",
                message="assert 500 == 200",
                started_at=NOW,
                completed_at=NOW,
                duration_seconds=1.5,
                log_tail="FAILED test_api.py::test_health",
                attempt=2,
                flaky=True,
                failed_log_tail="FAILED test_api.py::test_health (attempt 1)",
                attempts=[
                    AttemptRecord(
                        attempt=1,
                        pod="shop-3-api-smoke",
                        phase=TestPhase.FAILED,
                        exit_code=1,
                        reason="Error",
                        started_at=NOW,
                        completed_at=NOW,
                        duration_seconds=1.0,
                    )
                ],
                pytest=PytestSummary(
                    passed=3, failed=1, skipped=1, errors=0, duration_seconds=1.2, first_failures=["t"]
                ),
                log_container="jwt-setup",
                artifacts=[ArtifactFile(name="junit.xml", size=10, sha256="ab" * 32)],
                artifacts_message="screens/big.png: over the per-test quota",
                failures=[PytestFailure(id="test_api.py::test_health", message="assert 500 == 200")],
                diagnostics=Diagnostics(
                    containers=[
                        ContainerDiagnosis(
                            name="jwt-setup",
                            init=True,
                            state="terminated",
                            reason="Error",
                            exit_code=1,
                            message="m",
                            restart_count=0,
                        )
                    ],
                    events=[
                        PodEventRecord(type="Warning", reason="BackOff", message="m", count=2, last_seen=NOW)
                    ],
                ),
            )
        ],
        conditions=[Condition(type="Complete", status="True", reason="Failed", last_transition_time=NOW)],
    ).model_dump(by_alias=True, exclude_none=True, mode="json")


def _full_spec() -> dict[str, Any]:
    return RunSpec(
        release=ReleaseRef(
            name="shop",
            namespace="shop",
            revision=3,
            chart="shop",
            chart_version="1.2.3",
            app_version="2.0.0",
            image_tag="2.0.1",
            trigger=Trigger.UPGRADE,
            deployed_at=NOW,
        ),
        tests=[TestSource(name="api-smoke", source="suite/api", timeout_seconds=300, retries=2)],
        report=ReportSpec(to=["team@example.com"], only_on_failure=True, webhooks=["ops-events"]),
        attempt=2,
        request=RunRequest(trigger=RequestTrigger.SCHEDULE, token="api@2026-11-27T10:00:00Z", suite="api"),
        on_failure=OnFailure.ROLLBACK,
    ).model_dump(by_alias=True, exclude_none=True, mode="json")


@pytest.mark.parametrize("name", [RUNS, SUITES])
def test_crd_is_a_namespaced_v1alpha1_resource_of_the_helm_e2e_group(name: str) -> None:
    crd = _crd(name)
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{crd['spec']['names']['plural']}.helm-e2e.dev"
    assert crd["spec"]["group"] == "helm-e2e.dev"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["categories"] == ["helm-e2e"]
    version = _version(name)
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def test_e2erun_names_and_printer_columns() -> None:
    names = _crd(RUNS)["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == ("E2ERun", "e2eruns", ["e2er"])
    columns = {
        c["name"].upper(): (c["jsonPath"], c["type"]) for c in _version(RUNS)["additionalPrinterColumns"]
    }
    assert columns == {
        "RELEASE": (".spec.release.name", "string"),
        "REVISION": (".spec.release.revision", "integer"),
        "IMAGE TAG": (".spec.release.imageTag", "string"),
        "PHASE": (".status.phase", "string"),
        "PASSED": (".status.summary.passed", "integer"),
        "FAILED": (".status.summary.failed", "integer"),
        "ROLLOUT": ('.status.conditions[?(@.type=="ReleaseReady")].reason', "string"),
        "AGE": (".metadata.creationTimestamp", "date"),
        # -o wide only (priority 1): retries and re-runs
        "FLAKY": (".status.summary.flaky", "integer"),
        "ATTEMPT": (".spec.attempt", "integer"),
        "REQUEST": (".spec.request.trigger", "string"),
        "COMMIT": (".spec.release.commit", "string"),  # the git revision of the deploy (core/sources/flux.py)
    }


def test_e2esuite_names_and_printer_columns() -> None:
    names = _crd(SUITES)["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == ("E2ESuite", "e2esuites", ["e2es"])
    columns = {c["name"].upper(): c["jsonPath"] for c in _version(SUITES)["additionalPrinterColumns"]}
    assert columns["VALID"] == '.status.conditions[?(@.type=="Valid")].status'
    assert columns["AGE"] == ".metadata.creationTimestamp"


def test_e2erun_enums_match_the_models() -> None:
    props = _schema(RUNS)["properties"]
    status = props["status"]["properties"]
    assert status["phase"]["enum"] == [p.value for p in RunPhase]
    assert status["tests"]["items"]["properties"]["phase"]["enum"] == [p.value for p in TestPhase]
    assert props["spec"]["properties"]["release"]["properties"]["trigger"]["enum"] == [
        t.value for t in Trigger
    ]


def test_e2esuite_trigger_enum_matches_the_model() -> None:
    triggers = _schema(SUITES)["properties"]["spec"]["properties"]["triggers"]
    assert triggers["items"]["enum"] == [t.value for t in Trigger]


def test_e2erun_spec_is_immutable() -> None:
    spec = _schema(RUNS)["properties"]["spec"]
    assert spec["x-kubernetes-validations"] == [{"rule": "self == oldSelf", "message": "spec is immutable"}]


@pytest.mark.parametrize("name", [RUNS, SUITES])
def test_conditions_are_a_map_keyed_by_type(name: str) -> None:
    conditions = _schema(name)["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert set(conditions["items"]["required"]) >= {"type"}  # a map key must be required
    assert conditions["items"]["properties"]["status"]["enum"] == ["True", "False", "Unknown"]


def test_every_status_field_the_operator_writes_is_declared_in_the_e2erun_schema() -> None:
    schema = _schema(RUNS)["properties"]["status"]
    status = _full_status()
    assert set(status) == {
        a.alias or n for n, a in RunStatus.model_fields.items()
    }  # every field is exercised
    assert _undeclared(status, schema) == []


def test_every_spec_field_the_operator_writes_is_declared_in_the_e2erun_schema() -> None:
    schema = _schema(RUNS)["properties"]["spec"]
    spec = _full_spec()
    assert _undeclared(spec, schema) == []
    assert set(schema["required"]) <= set(spec)


def test_every_suite_field_the_model_reads_is_declared_in_the_e2esuite_schema() -> None:
    spec = SuiteSpec(
        tests=[
            SuiteTest.model_validate(
                {
                    "name": "api-smoke",
                    "timeoutSeconds": 60,
                    "retries": 2,
                    "metadata": {"labels": {"a": "b"}, "annotations": {"c": "d"}},
                    "template": {"containers": [{"name": "t", "image": "{{ image_tag }}"}]},
                }
            )
        ],
        report=ReportSpec(to=["a@example.com"]),
        schedule=SuiteSchedule(cron="*/30 * * * *", time_zone="Europe/Berlin"),
        on_failure=OnFailure.ROLLBACK,
    ).model_dump(by_alias=True, exclude_none=True, mode="json")
    spec["imageTag"] = {"valuesPath": "image.tag"}
    assert _undeclared(spec, _schema(SUITES)["properties"]["spec"]) == []


def test_suite_test_name_rules_match_the_model() -> None:
    crd = _schema(SUITES)["properties"]["spec"]["properties"]["tests"]["items"]["properties"]
    model = SuiteTest.model_json_schema(by_alias=True)["properties"]
    assert (crd["name"]["pattern"], crd["name"]["maxLength"]) == (
        model["name"]["pattern"],
        model["name"]["maxLength"],
    )
    assert crd["timeoutSeconds"]["minimum"] == model["timeoutSeconds"]["anyOf"][0]["minimum"]


def test_suite_template_accepts_anything_so_a_bad_template_becomes_a_condition() -> None:
    test = _schema(SUITES)["properties"]["spec"]["properties"]["tests"]["items"]
    assert test["properties"]["template"] == {
        "type": "object",
        "description": test["properties"]["template"]["description"],
        "x-kubernetes-preserve-unknown-fields": True,
    }
    bad = {"containers": [{"name": "t", "image": "{{ nope", "bogus": {"x": 1}}], "whatever": [1, "2"]}
    assert _undeclared({"template": bad}, test) == []


def test_chart_crds_are_byte_identical_to_the_repository_crds() -> None:
    repo = {p.name: p.read_bytes() for p in CRDS.glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (ROOT / "charts" / "helm-e2e" / "crds").iterdir()}
    assert set(repo) == {RUNS, SUITES}
    assert chart == repo


def test_suite_schedule_status_is_declared() -> None:
    status = _schema(SUITES)["properties"]["status"]["properties"]
    assert status["lastScheduleTime"] == {
        "type": "string",
        "format": "date-time",
        "description": status["lastScheduleTime"]["description"],
    }


def test_on_failure_enums_match_the_model() -> None:
    run = _schema(RUNS)["properties"]["spec"]["properties"]["onFailure"]
    suite = _schema(SUITES)["properties"]["spec"]["properties"]["onFailure"]
    assert run["enum"] == suite["enum"] == [o.value for o in OnFailure]


def test_run_request_trigger_enum_matches_the_model() -> None:
    request = _schema(RUNS)["properties"]["spec"]["properties"]["request"]
    assert request["properties"]["trigger"]["enum"] == [t.value for t in RequestTrigger]


SCHEMA_KEYWORDS = {
    "type", "description", "properties", "items", "required", "enum", "format", "minimum", "maximum",
    "maxItems", "minItems", "maxLength", "minLength", "pattern", "default", "nullable",
    "additionalProperties", "x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string", "x-kubernetes-map-type",
    "x-kubernetes-embedded-resource", "anyOf", "oneOf", "allOf", "not",
}  # fmt: skip


def _unknown_keywords(node: Any, path: str) -> list[str]:
    """Schema keys that are no keyword: e.g. a flow-style description holding a comma splits into a key."""
    if not isinstance(node, dict):
        return []
    bad = [f"{path}.{k}" for k in node if k not in SCHEMA_KEYWORDS]
    for name, child in (node.get("properties") or {}).items():
        bad += _unknown_keywords(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        bad += _unknown_keywords(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        bad += _unknown_keywords(node["additionalProperties"], f"{path}{{}}")
    return bad


@pytest.mark.parametrize("name", [RUNS, SUITES])
def test_every_schema_key_is_a_schema_keyword(name: str) -> None:
    assert _unknown_keywords(_schema(name), "") == []
