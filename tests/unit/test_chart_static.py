"""The operator chart stays in step with the CRDs and the Settings it configures."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from helm_e2e.config import Settings
from helm_e2e.core.models import RunPhase, RunStatus, TestPhase, TestResult, Trigger

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "helm-e2e"


def test_chart_crds_are_byte_identical_to_the_repository_crds() -> None:
    repo = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert repo
    assert chart == repo


def test_every_env_var_the_chart_sets_is_a_setting() -> None:
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    names = set(re.findall(r"HELM_E2E_[A-Z_]+", deployment))
    fields = {f"HELM_E2E_{name.upper()}" for name in Settings.model_fields}
    assert names
    assert names <= fields


def _schema(crd: str) -> dict:
    doc = yaml.safe_load((ROOT / "crds" / crd).read_text())
    return doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_crd_enums_match_the_models() -> None:
    run = _schema("e2eruns.helm-e2e.dev.yaml")
    assert run["properties"]["status"]["properties"]["phase"]["enum"] == [p.value for p in RunPhase]
    test_phase = run["properties"]["status"]["properties"]["tests"]["items"]["properties"]["phase"]
    assert test_phase["enum"] == [p.value for p in TestPhase]
    trigger = run["properties"]["spec"]["properties"]["release"]["properties"]["trigger"]
    assert trigger["enum"] == [t.value for t in Trigger]


def _undeclared(value: object, schema: dict, path: str = "") -> list[str]:
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict):
        props = schema.get("properties", {})
        out = [f"{path}.{k}" for k in value if k not in props]
        return out + [
            p for k, v in value.items() if k in props for p in _undeclared(v, props[k], f"{path}.{k}")
        ]
    if isinstance(value, list):
        return [
            p for i, v in enumerate(value) for p in _undeclared(v, schema.get("items", {}), f"{path}[{i}]")
        ]
    return []


def test_every_status_field_the_operator_writes_is_declared_in_the_crd() -> None:
    from datetime import UTC, datetime

    from helm_e2e.core.models import Condition, PytestSummary

    now = datetime.now(UTC)
    status = RunStatus(
        phase=RunPhase.FAILED,
        started_at=now,
        completed_at=now,
        message="m",
        email_attempts=1,
        pods_deleted_at=now,
        tests=[
            TestResult(
                name="a",
                pod="p",
                phase=TestPhase.FAILED,
                exit_code=1,
                reason="r",
                message="m",
                started_at=now,
                completed_at=now,
                duration_seconds=1.0,
                log_tail="x",
                pytest=PytestSummary(passed=1, duration_seconds=1.0, first_failures=["t"]),
            )
        ],
        conditions=[
            Condition(type="Complete", status="True", reason="r", message="m", last_transition_time=now)
        ],
    ).model_dump(by_alias=True, exclude_none=True, mode="json")
    schema = _schema("e2eruns.helm-e2e.dev.yaml")["properties"]["status"]
    assert _undeclared(status, schema) == []
