"""E2ERun bodies ⇄ the core's Run model (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from helm_e2e.core.model import names
from helm_e2e.core.model.dns_names import label_value
from helm_e2e.core.model.release import OnFailure
from helm_e2e.core.model.run import Run, RunSpec
from helm_e2e.core.model.run_status import RunStatus


def build_run_body(spec: RunSpec, *, name: str, namespace: str) -> dict[str, Any]:
    """The E2ERun to create. `spec.onFailure` is repeated as an annotation: an E2ERun CRD older than the
    operator (Helm never upgrades a chart's crds/) prunes the field, and the opt-in must not vanish."""
    release = spec.release
    annotations = {names.ON_FAILURE_ANNOTATION: spec.on_failure.value} if spec.on_failure else {}
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.RUN_KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                names.MANAGED_BY_LABEL: names.MANAGED_BY,
                names.RELEASE_LABEL: label_value(release.name),
                names.REVISION_LABEL: str(release.revision),
            },
            **({"annotations": annotations} if annotations else {}),
        },
        "spec": spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
    }


def build_owner_reference(run: Run, *, controller: bool = True) -> dict[str, Any]:
    """What the run owns is garbage-collected with it; blockOwnerDeletion keeps it until then."""
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.RUN_KIND,
        "name": run.name,
        "uid": run.uid,
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def run_from_body(body: Mapping[str, Any]) -> Run:
    meta = body.get("metadata", {})
    spec = RunSpec.model_validate(body["spec"])
    recorded = (meta.get("annotations") or {}).get(names.ON_FAILURE_ANNOTATION)
    if spec.on_failure is None and recorded in {o.value for o in OnFailure}:
        spec.on_failure = OnFailure(recorded)  # the field was pruned by an older CRD schema
    return Run(
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta.get("uid", ""),
        created_at=meta.get("creationTimestamp"),
        spec=spec,
        status=RunStatus.model_validate(body.get("status") or {}),
    )


def readable_runs(bodies: Iterable[Mapping[str, Any]]) -> list[tuple[Run, Mapping[str, Any]]]:
    """The runs of `bodies` the operator can read, with their bodies; a hand-made run that is not one it
    writes is skipped here (its own reconcile ends it Refused) and never stops the others' work."""
    readable = []
    for body in bodies:
        try:
            readable.append((run_from_body(body), body))
        except (ValidationError, KeyError, TypeError):
            continue
    return readable


def runs_from_bodies(bodies: Iterable[Mapping[str, Any]]) -> list[Run]:
    return [run for run, _ in readable_runs(bodies)]


def status_body(status: RunStatus) -> dict[str, Any]:
    body: dict[str, Any] = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    return body
