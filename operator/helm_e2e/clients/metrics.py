"""Prometheus metrics of the operator (served by prometheus-client on HELM_E2E_METRICS_PORT)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RUNS = Counter("helm_e2e_runs_total", "Finished E2ERuns by final phase", ["phase"])
RUNS_CREATED = Counter("helm_e2e_triggered_runs_total", "E2ERuns created, by trigger", ["trigger"])
RUN_DURATION = Histogram(
    "helm_e2e_run_duration_seconds",
    "Start to completion of an E2ERun",
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
TRIGGER_LATENCY = Histogram(
    "helm_e2e_trigger_latency_seconds",
    "From the release being deployed to its E2ERun being created",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
TESTS = Counter("helm_e2e_tests_total", "Finished tests by result", ["phase"])
EMAILS = Counter("helm_e2e_emails_total", "Report e-mails by result", ["result"])
NOTIFICATIONS = Counter(
    "helm_e2e_notifications_total",
    "Webhook notification attempts by target type and result",
    ["type", "result"],
)
RELEASE_DECODE_ERRORS = Counter(
    "helm_e2e_release_decode_errors_total",
    "Helm release secrets refused: undecodable, or their identity disagrees with the Secret",
    ["reason"],
)
RECONCILE_PASSES = Counter(
    "helm_e2e_reconcile_passes_total",
    "Reconcile passes of E2ERuns (woken by their pods' and their own changes, requeues and resyncs)",
)
RECONCILE_ERRORS = Counter(
    "helm_e2e_reconcile_errors_total", "Reconcile passes that raised, by error type", ["error"]
)
CREATE_REFUSED = Counter(
    "helm_e2e_create_refused_total", "Test objects the API refused to create, by the API's reason", ["reason"]
)
ARTIFACT_UPLOADS = Counter(
    "helm_e2e_artifact_uploads_total",
    "Artifact uploads by result: stored, refused (over quota, malformed), unauthorized (bad, expired token), "
    "busy (no free upload slot: answered 503, the collector tries again)",
    ["result"],
)
RUNS_REFUSED = Counter(
    "helm_e2e_runs_refused_total", "E2ERuns not created by the operator for their release, ended Refused"
)
ARTIFACT_STORE_READY = Gauge(
    "helm_e2e_artifact_store_ready",
    "1 when the artifact store was last found writable, 0 when not (evidence is being lost)",
)
ARTIFACT_BYTES = Counter("helm_e2e_artifact_bytes_total", "Bytes of artifacts stored (uncompressed)")
ROLLBACKS = Counter(
    "helm_e2e_rollbacks_total",
    "Rollback decisions on Failed runs, by result (RolledBack, RollbackFailed, or why none was made)",
    ["result"],
)
WATCH_RESTARTS = Counter("helm_e2e_watch_restarts_total", "Operator (re)starts of the Helm release watch")


def serve(port: int) -> None:
    if port:
        start_http_server(port)
