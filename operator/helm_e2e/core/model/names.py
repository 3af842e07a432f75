"""Every name helm-e2e shares with the cluster, in one place (pure constants).

The API group and version, kinds, labels and annotations, condition types and reasons. The CRDs and the
chart are checked against these by tests (tests/unit/core/model/test_names.py), so a rename here cannot drift.
"""

from __future__ import annotations

from typing import Final

# --- API ---------------------------------------------------------------------------------------------
GROUP: Final = "helm-e2e.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
RUN_KIND: Final = "E2ERun"
SUITE_KIND: Final = "E2ESuite"
RUNS: Final = "e2eruns"
SUITES: Final = "e2esuites"
COMPONENT: Final = "helm-e2e"  # Event source / reportingComponent, managed-by value

# --- Helm's storage (DESIGN.md §4) -------------------------------------------------------------------
HELM_SECRET_TYPE: Final = "helm.sh/release.v1"  # noqa: S105 - a Secret type, not a password
HELM_OWNER_LABEL: Final = "owner"
HELM_OWNER: Final = "helm"
HELM_NAME_LABEL: Final = "name"
HELM_STATUS_LABEL: Final = "status"
HELM_VERSION_LABEL: Final = "version"
HELM_UNINSTALL_STATUSES: Final = frozenset({"uninstalling", "uninstalled"})  # an uninstall's marks
# The Helm Secrets the operator watches: a release's deployed revision and an uninstall's marks, never its
# history (superseded, failed, pending-*): a start lists one Secret per release, not one per revision. A
# revision leaving the selection (superseded by an upgrade) arrives as DELETED with its new labels.
HELM_SECRET_SELECTOR: Final = (
    f"{HELM_OWNER_LABEL}={HELM_OWNER},{HELM_STATUS_LABEL} in (deployed,uninstalling,uninstalled)"
)
HELM_SECRET_PREFIX: Final = "sh.helm.release.v1."  # noqa: S105 - a name prefix, not a password
HOOK_ANNOTATION: Final = "helm.sh/hook"
HOOK_WEIGHT_ANNOTATION: Final = "helm.sh/hook-weight"
HOOK_DELETE_POLICY_ANNOTATION: Final = "helm.sh/hook-delete-policy"

# --- labels and annotations we put on what we create --------------------------------------------------
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = COMPONENT
RUN_LABEL: Final = f"{GROUP}/run"
RELEASE_LABEL: Final = f"{GROUP}/release"
REVISION_LABEL: Final = f"{GROUP}/revision"
TEST_LABEL: Final = f"{GROUP}/test"
SOURCE_ANNOTATION: Final = f"{GROUP}/source"
TIMEOUT_ANNOTATION: Final = f"{GROUP}/timeout-seconds"
MANAGED_BY_SELECTOR: Final = f"{MANAGED_BY_LABEL}={MANAGED_BY}"

# --- E2ERun conditions ----------------------------------------------------------------------------------
COND_COMPLETE: Final = "Complete"
COND_SUCCEEDED: Final = "Succeeded"
COND_EMAIL_SENT: Final = "EmailSent"
# --- E2ESuite conditions --------------------------------------------------------------------------------
COND_VALID: Final = "Valid"

# --- reasons (conditions, test results and Events) ------------------------------------------------------
REASON_RUNNING: Final = "Running"
REASON_SUPERSEDED: Final = "Superseded"
REASON_UNINSTALLED: Final = "Uninstalled"
REASON_TIMEOUT: Final = "Timeout"
REASON_POD_LOST: Final = "PodLost"
REASON_NOT_PLANNED: Final = "NotPlanned"
REASON_INIT_FAILED: Final = "InitContainerFailed"
REASON_CREATE_REFUSED: Final = "CreateRefused"
REASON_RECONCILE_FAILED: Final = "ReconcileFailed"
REASON_POLICY_VIOLATION: Final = "PolicyViolation"
REASON_REFUSED: Final = "Refused"  # not the operator's own record of its release (core/lifecycle/trust.py)
HELM_APPLY_METHOD_SSA: Final = "ssa"  # Helm 4's release.apply_method for server-side apply
HELM_FIELD_MANAGER: Final = "helm"  # Helm 4's field manager (cmd/helm: kube.ManagedFieldsManager)
# Events
EVENT_PLANNED: Final = "Planned"
EVENT_STARTED: Final = "Started"
EVENT_TEST_FAILED: Final = "TestFailed"
EVENT_COMPLETED: Final = "Completed"
EVENT_PLAN_NOTE: Final = "PlanNote"  # something about the plan worth a Warning (never a value)
EVENT_RELEASE_DECODE_FAILED: Final = "ReleaseDecodeFailed"
EVENT_RELEASE_IDENTITY_MISMATCH: Final = "ReleaseIdentityMismatch"
EVENT_ARTIFACTS_UNAVAILABLE: Final = "ArtifactsUnavailable"  # a test runs without its collector
# E-mail outbox (EmailSent reasons)
MAIL_SENDING: Final = "Sending"
MAIL_SENT: Final = "Sent"
MAIL_FAILED: Final = "Failed"
MAIL_RETRYING: Final = "Retrying"
MAIL_DISABLED: Final = "Disabled"
MAIL_NO_TESTS: Final = "NoTests"
MAIL_NOT_REPORTED: Final = "NotReported"  # Cancelled/Superseded, HELM_E2E_MAIL_REPORT_CANCELLED off
MAIL_ONLY_ON_FAILURE: Final = "OnlyOnFailure"
MAIL_NO_RECIPIENTS: Final = "NoRecipients"
# The outbox (core/outcomes/outbox.py): the e-mail's channel in status.notifications[]. Not a DNS label, so
# never the name of a webhook target (spec.report.webhooks is DNS labels, the webhooks Secret's keys too).
MAIL_CHANNEL: Final = "@mail"
MAIL_CHANNEL_TYPE: Final = "email"
# E2ESuite Valid reasons
SUITE_VALID: Final = "Valid"
SUITE_SCHEMA_INVALID: Final = "SchemaInvalid"
SUITE_TEMPLATE_ERROR: Final = "TemplateError"
REASON_RELEASE_IDENTITY_MISMATCH: Final = "ReleaseIdentityMismatch"

# --- trust boundary (docs/security.md) -----------------------------------------------------------------
# A ServiceAccount a namespace admin labelled with this (value "true") may be named by a test pod.
TEST_ACCOUNT_LABEL: Final = f"{GROUP}/test-account"
TEST_ACCOUNT_SELECTOR: Final = f"{TEST_ACCOUNT_LABEL}=true"

# --- chart test hooks run the way `helm test` runs them (core/plan/chart_hooks.py, core/results/hook_jobs.py)
HOOK_TEST_EVENTS: Final = frozenset({"test", "test-success"})  # test-success: Helm 2's name
HOOK_BEFORE_CREATION: Final = "before-hook-creation"  # Helm's default when no policy is given
HOOK_SUCCEEDED: Final = "hook-succeeded"
HOOK_FAILED: Final = "hook-failed"
JOB_NAME_LABEL: Final = "batch.kubernetes.io/job-name"  # set by the Job controller on its pods
REASON_HOOK_REFUSED: Final = "HookRefused"  # a hook of the test's hook set was refused (trust rules)
REASON_NAME_TAKEN: Final = "NameTaken"  # a hook object's name is held by an object that is not ours
EVENT_HOOK_REFUSED: Final = "HookRefused"
# Readiness gate (core/plan/readiness.py): tests start only when the release's objects are rolled out
REASON_WAITING_FOR_ROLLOUT: Final = "WaitingForRollout"
REASON_ROLLOUT_FAILED: Final = "RolloutFailed"
REASON_ROLLOUT_TIMEOUT: Final = "RolloutTimeout"
EVENT_ROLLED_OUT: Final = "RolledOut"

# --- the readiness gate (core/plan/readiness.py, core/lifecycle/decide.py) ----------------------------------
COND_RELEASE_READY: Final = "ReleaseReady"
REASON_RELEASE_NOT_READY: Final = "ReleaseNotReady"  # the rollout failed or did not finish in time

# --- rollback on failure (core/outcomes/rollback.py) --------------------------------------------------------
ON_FAILURE_ANNOTATION: Final = f"{GROUP}/on-failure"  # in Chart.yaml `annotations`: "rollback" opts in
COND_ROLLED_BACK: Final = "RolledBack"
REASON_ROLLING_BACK: Final = "RollingBack"  # Unknown: intent recorded, helm called or about to be
REASON_ROLLED_BACK: Final = "RolledBack"
REASON_ROLLBACK_FAILED: Final = "RollbackFailed"
REASON_NO_PASSING_REVISION: Final = "NoPassingRevision"
REASON_NEWER_REVISION: Final = "NewerRevision"  # the failing revision is no longer the deployed one
REASON_ROLLBACK_REVISION: Final = "RollbackRevision"  # a rollback's own failing run never rolls back
EVENT_ROLLED_BACK: Final = "RolledBack"

# --- artifacts (docs/artifacts.md) ---
COLLECTOR_CONTAINER: Final = "helm-e2e-collector"  # the native sidecar that ships the artifacts directory
ARTIFACTS_VOLUME: Final = "helm-e2e-artifacts"  # the emptyDir shared by the test containers and the collector
ARTIFACTS_DIR_ENV: Final = "HELM_E2E_ARTIFACTS_DIR"  # where a test leaves its files (every test container)
UPLOAD_URL_ENV: Final = "HELM_E2E_UPLOAD_URL"  # collector only: where to send
UPLOAD_TOKEN_ENV: Final = "HELM_E2E_UPLOAD_TOKEN"  # noqa: S105 - collector only: the per-run, per-test, expiring token
ARTIFACTS_TICKET_ANNOTATION: Final = f"{GROUP}/artifacts-ticket"  # `helm-e2e artifacts`: proof of access
TICKET_HEADER: Final = "X-Helm-E2E-Ticket"  # the nonce whose digest the annotation holds
TOKEN_AUDIENCE: Final = f"{GROUP}/artifacts-upload"

# --- GitOps: Flux HelmReleases, the commit of a deploy (core/sources/flux.py, docs/gitops.md) ---
FLUX_GROUP: Final = "helm.toolkit.fluxcd.io"
FLUX_VERSION: Final = "v2"
FLUX_HELM_RELEASES: Final = "helmreleases"
FLUX_NAME_LABEL: Final = f"{FLUX_GROUP}/name"  # on every object Flux's post-renderer wrote
FLUX_NAMESPACE_LABEL: Final = f"{FLUX_GROUP}/namespace"
MANAGED_BY_FLUX: Final = "HelmRelease"  # spec.release.managedBy.kind
REASON_MANAGED_BY_FLUX: Final = "ManagedByFlux"  # RolledBack=False: remediation is Flux's, not helm's
EVENT_FLUX_TESTS: Final = "FluxTests"  # the chart's tests are Flux's (spec.test.enable): not run twice
TEST_SOURCE_FLUX: Final = "flux"  # spec.tests[].source of a chart test Flux runs: read, never run here
MANAGED_BY_ARGOCD: Final = "Application"  # spec.release.managedBy.kind of an Argo CD sync's run
ARGOCD_GROUP: Final = "argoproj.io"
ARGOCD_VERSION: Final = "v1alpha1"
ARGOCD_APPLICATIONS: Final = "applications"
COMMIT_LABEL: Final = f"{GROUP}/revision"  # `helm upgrade --labels helm-e2e.dev/revision=<sha>`
OCI_REVISION_ANNOTATION: Final = "org.opencontainers.image.revision"  # Chart.yaml annotations (OCI)
