"""GitOps (pure): the Flux HelmRelease that manages a release, whether Flux runs its chart tests and what
it recorded of them, and the git commit a deploy carries (docs/gitops.md).

Flux's helm-controller writes ordinary Helm release Secrets, so its releases are tested like any other,
*with* Flux: its post-renderer labels every object of the release `helm.toolkit.fluxcd.io/name` and
`/namespace` (read from the manifest, values never built: core/sources/manifest.py). A release so labelled is
never rolled back by `helm rollback` (core/outcomes/rollback.py: Flux would see a revision it never wrote and
upgrade it back, every interval). Whether Flux runs the chart's test hooks (`spec.test.enable`), and their
outcome (`status.history[0].testHooks`), are read from the HelmRelease, which is believed only when it
names this very release: its spec (release name and storage namespace, as Flux derives them) or its status
history. A label alone can never make the operator read or report another tenant's HelmRelease.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from helm_e2e.core.model import names
from helm_e2e.core.model.release import ManagedBy
from helm_e2e.core.model.run_status import TestPhase, TestResult
from helm_e2e.core.sources.manifest import manifest_fields
from helm_e2e.errors import ReleaseDecodeError

MAX_MANIFEST_BYTES = 8 * 2**20  # as the readiness gate's bound (core/plan/readiness.py)
MAX_DOCUMENTS = 5000
_NAME_PATH = ("metadata", "labels", names.FLUX_NAME_LABEL)
_NAMESPACE_PATH = ("metadata", "labels", names.FLUX_NAMESPACE_LABEL)
_DNS = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
MAX_FLUX_TESTS = 50
# Helm's hook phases as Flux copies them (Unknown, Running, Succeeded, Failed); one not final is still running
_FLUX_PHASES = {"Succeeded": TestPhase.SUCCEEDED, "Failed": TestPhase.FAILED}
_COMMIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$")  # a SHA, `main@sha1:<sha>`, a tag


def find_flux_owner(manifest: str) -> ManagedBy | None:
    """The HelmRelease named by the Flux labels of the release's objects (the first object carrying both);
    None when there is none, or the manifest cannot be read (the readiness gate says why)."""
    if not manifest or len(manifest.encode()) > MAX_MANIFEST_BYTES:
        return None
    try:
        for fields in manifest_fields(
            manifest, wanted=frozenset({_NAME_PATH, _NAMESPACE_PATH}), max_documents=MAX_DOCUMENTS
        ):
            name, namespace = fields.get(_NAME_PATH, ""), fields.get(_NAMESPACE_PATH, "")
            if _DNS.match(name) and _DNS.match(namespace):
                return ManagedBy(kind=names.MANAGED_BY_FLUX, name=name, namespace=namespace)
    except ReleaseDecodeError:
        return None
    return None


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        obj = obj.get(part) if isinstance(obj, Mapping) else None
    return obj


def flux_release_name(helm_release: Mapping[str, Any]) -> tuple[str, str]:
    """(release name, storage namespace) as Flux derives them: `spec.releaseName`, else
    `[<targetNamespace>-]<name>`; `spec.storageNamespace`, else the HelmRelease's namespace."""
    name = str(_get(helm_release, "metadata", "name") or "")
    own = str(_get(helm_release, "metadata", "namespace") or "")
    target = str(_get(helm_release, "spec", "targetNamespace") or "")
    release = str(_get(helm_release, "spec", "releaseName") or (f"{target}-{name}" if target else name))
    return shorten_release_name(release), str(_get(helm_release, "spec", "storageNamespace") or own)


MAX_RELEASE_NAME = 53  # Helm's limit; Flux shortens a longer name rather than fail


def shorten_release_name(name: str) -> str:
    """The name Flux gives the Helm release (helm-controller internal/release/name.go `ShortenName`): over 53
    characters, its first 40, a hyphen and the first 12 hex digits of its SHA-256."""
    if len(name) <= MAX_RELEASE_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"{name[: MAX_RELEASE_NAME - 13]}-{digest}"


def manages(helm_release: Mapping[str, Any], *, release: str, namespace: str) -> bool:
    """The HelmRelease says it manages this release: by its spec, or by a snapshot of its status history."""
    if flux_release_name(helm_release) == (release, namespace):
        return True
    history = _get(helm_release, "status", "history")
    return isinstance(history, list) and any(
        isinstance(s, Mapping) and s.get("name") == release and s.get("namespace") == namespace
        for s in history[:20]
    )


def flux_runs_tests(helm_release: Mapping[str, Any] | None, *, release: str, namespace: str) -> bool:
    """Flux runs the chart's test hooks itself (`spec.test.enable: true`) for this release."""
    if helm_release is None or not manages(helm_release, release=release, namespace=namespace):
        return False
    return _get(helm_release, "spec", "test", "enable") is True


def flux_test_results(
    helm_release: Mapping[str, Any] | None, *, release: str, namespace: str, revision: int
) -> dict[str, TestResult]:
    """The chart tests Flux ran for `revision`, by hook name, as its HelmRelease recorded them
    (`status.history[0].testHooks`: `<namespace>/<name>` → {phase, lastStarted, lastCompleted}); empty
    while Flux has not tested this revision, or when the HelmRelease does not name this release."""
    if helm_release is None or not manages(helm_release, release=release, namespace=namespace):
        return {}
    history = _get(helm_release, "status", "history")
    latest = history[0] if isinstance(history, list) and history else None
    hooks = _get(latest, "testHooks")
    if _get(latest, "version") != revision or not isinstance(hooks, Mapping):
        return {}
    meta = helm_release.get("metadata") or {}
    where = f"Flux HelmRelease {meta.get('namespace')}/{meta.get('name')}"
    out: dict[str, TestResult] = {}
    for key, hook in list(hooks.items())[:MAX_FLUX_TESTS]:
        flux_phase = str(_get(hook, "phase") or "Unknown")[:32]
        phase = _FLUX_PHASES.get(flux_phase, TestPhase.RUNNING)
        name = str(key).rpartition("/")[2]
        out[name] = TestResult(
            name=name,
            phase=phase,
            reason="" if phase == TestPhase.SUCCEEDED else f"Flux{flux_phase}",
            message=f"run by {where}: {flux_phase}",
            started_at=_time(_get(hook, "lastStarted")),
            completed_at=_time(_get(hook, "lastCompleted")),
        )
    return out


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def describe_flux_rollback(managed: ManagedBy) -> str:
    """Why a Flux-managed release is not rolled back, and how to roll it back with Flux."""
    where = f"{managed.namespace}/{managed.name}"
    return (
        f"managed by Flux HelmRelease {where}: not rolled back behind Flux's back (Flux would upgrade it "
        f"again); remediation is Flux's (spec.upgrade.remediation), or revert the change in git, or "
        f"`flux suspend helmrelease {managed.name} -n {managed.namespace}` before a `helm rollback`"
    )


def describe_flux_tests(managed: ManagedBy) -> str:
    """Why the chart's test hooks are not in the run."""
    return (
        f"the chart's test hooks are run by Flux (HelmRelease {managed.namespace}/{managed.name}, "
        f"spec.test.enable): not run a second time; their outcome is in the HelmRelease's status.history"
    )


def find_commit(*, labels: Mapping[str, Any], chart_annotations: Mapping[str, str]) -> str:
    """The git commit a deploy carries: the release label `helm-e2e.dev/revision` (`helm upgrade
    --labels`), else the chart's OCI annotation `org.opencontainers.image.revision`; '' when neither is a
    plausible revision."""
    for value in (labels.get(names.COMMIT_LABEL), chart_annotations.get(names.OCI_REVISION_ANNOTATION)):
        text = str(value or "").strip()
        if _COMMIT.match(text):
            return text
    return ""
