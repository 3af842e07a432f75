"""Is this E2ERun the operator's own record? (pure)

An E2ERun is written by the operator alone (the chart's ValidatingAdmissionPolicy, and a CRD whose spec is
immutable), but a tenant who can create or patch E2ERuns where that policy is not installed must still not
steer the operator: a run is worked on only in its release's own namespace, and only against the very Helm
release Secret it was planned from (its uid, recorded at creation). Anything else ends `Refused` and is
touched no further: no Secret read, no pod, no rollback, no report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helm_e2e.core.model.run import Run
from helm_e2e.core.model.run_status import RunPhase


def refuse_run(run: Run) -> str | None:
    """Why `run` is not one the operator made for its release, from the run alone; None when it may be."""
    release = run.spec.release
    if release.namespace != run.namespace:
        return (
            f"the run names a release in namespace {release.namespace!r}, not its own namespace: runs are "
            "only worked on in their release's namespace"
        )
    if not release.secret_uid and run.status.phase == RunPhase.PENDING and not run.status.tests:
        # runs of an operator before 0.3 carry no uid; those already under way are left to finish
        return "the run records no release Secret uid: it was not created by the helm-e2e operator"
    return None


def refuse_secret(run: Run, secret: Mapping[str, Any]) -> str | None:
    """Why `secret` is not the release Secret `run` was planned from; None when it is."""
    uid = str((secret.get("metadata") or {}).get("uid") or "")
    if run.spec.release.secret_uid and uid != run.spec.release.secret_uid:
        return (
            "the release Secret is not the one this run was planned from (its uid differs): the run was "
            "not created by the helm-e2e operator for this revision"
        )
    return None
