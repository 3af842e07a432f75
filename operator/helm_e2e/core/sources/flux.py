"""GitOps (pure): the Flux HelmRelease that manages a release, whether Flux runs its chart tests and what
it recorded of them, and the git commit a deploy carries (docs/gitops.md).

Flux's helm-controller writes ordinary Helm release Secrets, so its releases are tested like any other,
*with* Flux: its post-renderer labels every object of the release `helm.toolkit.fluxcd.io/name` and
`/namespace` (read from the manifest, values never built: core/sources/manifest.py). A release so labelled is
never rolled back by `helm rollback` (core/outcomes/rollback.py: Flux would see a revision it never wrote and
upgrade it back, every interval). Whether Flux runs the chart's test hooks (`spec.test.enable`, and only
for an install or an upgrade: never a rollback), and their outcome (the `status.history` snapshot of the
revision, `testHooks`), are read from the HelmRelease, which is believed only when it names this very
release: its spec (release name and storage namespace, as Flux derives them) or its status history. A label
alone can never make the operator read or report another tenant's HelmRelease.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from helm_e2e.core.model import names
from helm_e2e.core.model.release import ManagedBy, Trigger
from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import TestPhase, TestResult
from helm_e2e.core.model.times import parse_time
from helm_e2e.core.sources.manifest import manifest_fields
from helm_e2e.errors import ReleaseDecodeError

MAX_MANIFEST_BYTES = 8 * 2**20  # as the readiness gate's bound (core/plan/readiness.py)
MAX_DOCUMENTS = 5000
_NAME_PATH = ("metadata", "labels", names.FLUX_NAME_LABEL)
_NAMESPACE_PATH = ("metadata", "labels", names.FLUX_NAMESPACE_LABEL)
_DNS = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
MAX_FLUX_TESTS = 50
MAX_SNAPSHOTS = 20  # status.history is trimmed by Flux (spec.maxHistory, 5 by default)
# helm-controller v1.6.3 tests after an install or an upgrade only (internal/reconcile/state.go): a rollback,
# its own remediation's or one by hand, is never tested by Flux
_FLUX_TESTED = frozenset({Trigger.INSTALL, Trigger.UPGRADE})
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
        for s in history[:MAX_SNAPSHOTS]
    )


def flux_runs_tests(
    helm_release: Mapping[str, Any] | None, *, release: str, namespace: str, trigger: Trigger
) -> bool:
    """Flux runs the chart's test hooks itself (`spec.test.enable: true`) for this revision of this release:
    an install or an upgrade. A rollback (Flux's remediation writes them) Flux never tests: its chart tests
    run here, as for any release (our pods are `<release>-<revision>-<hook>`: no clash with Flux's)."""
    if trigger not in _FLUX_TESTED:
        return False
    if helm_release is None or not manages(helm_release, release=release, namespace=namespace):
        return False
    return _get(helm_release, "spec", "test", "enable") is True


def _snapshot(helm_release: Mapping[str, Any], revision: int) -> Any:
    """The status history snapshot of `revision`: not only the newest, since Flux's remediation writes a
    rollback revision within a second of the failed test it remediates."""
    history = _get(helm_release, "status", "history")
    if not isinstance(history, list):
        return None
    return next((s for s in history[:MAX_SNAPSHOTS] if _get(s, "version") == revision), None)


def flux_test_results(
    helm_release: Mapping[str, Any] | None, *, release: str, namespace: str, revision: int
) -> dict[str, TestResult]:
    """The chart tests Flux ran for `revision`, by hook name, as its HelmRelease recorded them (the
    `status.history` snapshot with `version: <revision>`, `testHooks`: `<hook>` → {phase, lastStarted,
    lastCompleted}; older Flux keyed them `<namespace>/<hook>`); empty while Flux has not tested this
    revision, once its snapshot is trimmed, or when the HelmRelease does not name this release."""
    if helm_release is None or not manages(helm_release, release=release, namespace=namespace):
        return {}
    hooks = _get(_snapshot(helm_release, revision), "testHooks")
    if not isinstance(hooks, Mapping):
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
            started_at=parse_time(_get(hook, "lastStarted")),
            completed_at=parse_time(_get(hook, "lastCompleted")),
        )
    return out


def pending_flux_tests(run: Run) -> list[str]:
    """The run's chart tests Flux runs (source `flux`) whose outcome is not recorded yet."""
    final = {r.name for r in run.status.tests if r.phase.is_final}
    return [t.name for t in run.spec.tests if t.source == names.TEST_SOURCE_FLUX and t.name not in final]


def with_flux_results(run: Run, flux: Mapping[str, TestResult]) -> Run:
    """The run with the final outcomes Flux recorded of its pending tests (kept as they are from then on);
    one Flux has not finished stays Pending, and ends Timeout like any test that does not finish."""
    done = {n: flux[n] for n in pending_flux_tests(run) if n in flux and flux[n].phase.is_final}
    if not done:
        return run
    status = run.status.model_copy(deep=True)
    status.tests = [done.pop(r.name, r) for r in status.tests] + list(done.values())
    return run.model_copy(update={"status": status})


def before_superseding(run: Run, flux: Mapping[str, TestResult]) -> Run | None:
    """A newer revision supersedes `run`, which waits for Flux's outcome (`flux`: read just now). None when
    Flux recorded the final outcome of every test still unfinished: the run is done, it ends with its own
    verdict on its next pass, not Superseded (Flux's remediation writes a rollback revision within a second
    of the failed test: superseding would hide the failure). Otherwise the run to supersede, with the final
    outcomes Flux did record kept."""
    recorded = with_flux_results(run, flux)
    if recorded is run:  # Flux recorded nothing new
        return run
    final = {r.name for r in recorded.status.tests if r.phase.is_final}
    return None if all(t.name in final for t in run.spec.tests) else recorded


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
