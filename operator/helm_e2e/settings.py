"""Operator settings from the environment (prefix HELM_E2E_), built once at startup and kept in kopf's memo.

Never read at import time: tests and the CLI build their own Settings.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from helm_e2e.core.model.run import ReadinessMode
from helm_e2e.core.plan.pod_security import PodSecurityLevel

__all__ = ["LogFormat", "PodSecurityLevel", "RollbackMode", "Settings", "SmtpTls"]


class SmtpTls(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class RollbackMode(StrEnum):
    OFF = "off"
    ON_FAILURE = "on-failure"


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HELM_E2E_", extra="ignore")

    # Namespaces whose Helm releases are watched (comma-separated); empty = the whole cluster.
    watch_namespaces: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Instead of names: the namespaces whose labels match this selector (e.g. helm-e2e.dev/shard=a), listed
    # at start and followed by a namespace watch (kopf restarts in-process when the set changes).
    namespace_selector: str = ""
    # Dotted path in the release's merged values that holds the image tag; falls back to appVersion.
    image_tag_values_path: str = "image.tag"
    # Run the chart's own `helm.sh/hook: test` pods as part of every run.
    run_chart_hooks: bool = True
    # Per-test timeout when neither the hook nor the suite sets one.
    default_test_timeout_seconds: int = Field(default=600, ge=1)
    # Wall-clock limit of a whole run; unfinished tests are then marked Error.
    run_deadline_seconds: int = Field(default=1800, ge=1)
    # E2ERuns kept per release (oldest finished ones are deleted).
    history_limit: int = Field(default=10, ge=1)
    # Finished test pods are deleted this long after the run completes (results live in the E2ERun).
    pod_ttl_seconds: int = Field(default=3600, ge=0)
    # On start, only revisions deployed this recently get a run (no flood of runs on first install).
    startup_grace_seconds: int = Field(default=600, ge=0)
    # Bytes of each test container's log kept in status.tests[].logTail.
    log_tail_bytes: int = Field(default=4096, ge=0, le=65536)
    # How often active runs are re-examined (seconds); pod events also wake them.
    resync_seconds: float = Field(default=5.0, gt=0)

    # SMTP: no host = no mail (a log line per run, not an error).
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_tls: SmtpTls = SmtpTls.NONE
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    # CA bundle to verify the SMTP server; empty = system roots.
    smtp_ca_file: str = ""
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    # One send is one attempt; the run's e-mail outbox retries later, backing off from this many seconds.
    smtp_retry_base_seconds: float = Field(default=2.0, ge=0)
    mail_from: str = "helm-e2e@localhost"
    # Default recipients of every report (comma-separated), merged with the suites' report.to.
    mail_to: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Domains report recipients may be in (comma-separated); empty = the domains of mail_to. A suite whose
    # report.to names another domain is invalid.
    mail_allowed_domains: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Report Superseded and Cancelled runs too.
    mail_report_cancelled: bool = True
    # Cluster name shown in the subject ("... in prod: PASSED 5/5"); defaults to the namespace.
    cluster_name: str = ""

    # Webhook notifications (CloudEvents, Slack, Teams) go through an outbox like the e-mail's. The targets
    # live in this Secret (in webhooks_namespace), one key per target holding JSON
    # {"type": "cloudevents"|"slack"|"teams", "url": "...", "secretKey": "<key holding the HMAC key>"}:
    # URLs come from the Secret only, never from settings or CRDs. Empty = no webhooks.
    webhooks_secret: str = ""
    # Namespace of webhooks_secret; the chart fills it with the operator's own namespace.
    webhooks_namespace: str = ""
    # Targets (names in webhooks_secret) notified of every report (comma-separated), merged with the
    # suites' report.webhooks.
    webhooks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Timeout (seconds) of one webhook delivery, connect to the end of the (bounded) reply.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # One POST is one attempt; the channel retries later, backing off from this many seconds.
    webhook_retry_base_seconds: float = Field(default=2.0, ge=0)

    # Before any test pod: wait until the release's objects are rolled out (`rollout`, the rules of
    # `helm --wait`), or not at all (`none`). A suite may turn it off (readiness.mode) or wait longer.
    readiness: ReadinessMode = ReadinessMode.ROLLOUT
    # How long a run waits for the rollout; then it ends Error/ReleaseNotReady naming what was not ready.
    ready_timeout_seconds: int = Field(default=600, ge=1)
    # Pod Security Standards level test pods must meet (privileged, baseline, restricted); a violating test
    # ends Error/PolicyViolation without a pod. Pod Security Admission on the namespace stays the backstop.
    pod_security: PodSecurityLevel = PodSecurityLevel.BASELINE
    # Wall-clock limit (seconds) of decoding one release and planning its tests in the sandbox process.
    sandbox_timeout_seconds: float = Field(default=10.0, gt=0)
    # Address-space limit (MiB) of the sandbox process that decodes releases and renders templates.
    sandbox_memory_mib: int = Field(default=256, ge=64)
    # Timeout (seconds) of one Kubernetes API request.
    api_timeout_seconds: float = Field(default=30.0, gt=0)
    # Each watch is ended by the apiserver after this many seconds and resumed from its last version; one
    # that stays silent longer (a dead connection: no error, no data) is cut by the client and resumed.
    watch_timeout_seconds: int = Field(default=300, ge=1)
    # Threads the blocking Kubernetes client's calls run in, and its connection pool's size; 0: asyncio's
    # default (CPUs + 4) and the client's (5 per CPU). 32 did not change a 100-release burst on 2 CPUs.
    api_threads: int = Field(default=0, ge=0, le=256)

    # Prometheus metrics on this port (0 = off); kopf's health probe is served separately.
    metrics_port: int = Field(default=9090, ge=0)
    log_format: LogFormat = LogFormat.JSON
    log_level: str = "INFO"

    # Further attempts of a test whose container failed (exit code ≠ 0), when neither the suite test
    # (`retries`) nor the chart hook (annotation helm-e2e.dev/retries) says; errors are never retried.
    default_retries: int = Field(default=0, ge=0, le=10)

    # --- Rollback on failure (core/outcomes/rollback.py; opt-in, see docs/security.md) ---
    # `on-failure`: every release's Failed run rolls it back to the newest earlier revision whose run
    # Succeeded (`helm rollback`); `off`: only suites (spec.onFailure) and charts (annotation) may opt in.
    rollback: RollbackMode = RollbackMode.OFF
    # `auto`: Argo CD Applications are a source of deploys when the applications.argoproj.io API is served
    # (each new successful sync is tested once Healthy; docs/gitops.md); `off`: never watched.
    argocd: Literal["auto", "off"] = "auto"
    # The helm binary that runs `helm rollback` (a path, or a name looked up on PATH).
    helm_binary: str = "helm"
    # Wall-clock limit (seconds) of one `helm rollback` call; the process is then killed.
    rollback_timeout_seconds: float = Field(default=120.0, gt=0)

    # --- Artifacts (docs/artifacts.md): files tests leave in HELM_E2E_ARTIFACTS_DIR, kept with the run ---
    # Where artifacts are stored: a directory (`/var/lib/helm-e2e/artifacts` or `file:///...`, the chart's
    # PVC) or an S3-compatible bucket (`s3://bucket/prefix?endpoint=https://...&region=...`, credentials from
    # AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY). Empty = no artifacts (no collector, no upload server).
    artifacts_store: str = ""
    # The URL test pods reach the operator's upload server at; the chart sets its Service's DNS name.
    artifacts_url: str = ""
    # The image of the collector sidecar (`python -m helm_e2e.collector`): the operator's own image.
    collector_image: str = ""
    # The directory every test container gets (an emptyDir the operator adds), also in HELM_E2E_ARTIFACTS_DIR.
    artifacts_dir: str = "/artifacts"
    # Port of the upload/download server (0 = off); reached by test pods and through the apiserver's
    # service proxy by `helm-e2e artifacts`.
    artifacts_port: int = Field(default=8081, ge=0, le=65535)
    # Address the server binds to.
    artifacts_bind: str = "0.0.0.0"  # noqa: S104  # pods on other nodes reach it through the Service
    # Quotas: bytes (uncompressed) one test may store, one run may store, and files per test.
    artifacts_max_test_bytes: int = Field(default=50 * 2**20, ge=1)
    artifacts_max_run_bytes: int = Field(default=200 * 2**20, ge=1)
    artifacts_max_files: int = Field(default=1000, ge=1, le=100_000)
    # Artifacts attached to the report e-mail, smallest first, up to this many bytes (0 = none attached);
    # the rest are listed with their sizes and the command that fetches them.
    mail_attachments_max_bytes: int = Field(default=5 * 2**20, ge=0)

    @property
    def artifacts_enabled(self) -> bool:
        return bool(self.artifacts_store and self.artifacts_url and self.collector_image)

    @field_validator("watch_namespaces", "mail_to", "mail_allowed_domains", "webhooks", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @property
    def allowed_mail_domains(self) -> frozenset[str]:
        """mail_allowed_domains, else the domains of mail_to; lower case."""
        domains = self.mail_allowed_domains or [a.rpartition("@")[2] for a in self.mail_to if "@" in a]
        return frozenset(d.strip().lower() for d in domains if d.strip())

    @property
    def smtp_enabled(self) -> bool:
        return bool(self.smtp_host)

    # --- Leader election: two replicas, one active (runtime/leader.py) ---
    # Wait for the coordination.k8s.io Lease before starting kopf; off for local runs, the chart turns it on.
    leader_election: bool = False
    # Namespace of the Lease; the chart fills it with the pod's own namespace (downward API).
    leader_election_namespace: str = ""
    # Name of the Lease; the chart names it after the release.
    leader_election_lease_name: str = "helm-e2e-leader"
    # A standby takes over this long (seconds) after it last saw the leader renew; a standby is active
    # between lease - retry and lease + 2 x retry seconds after the leader dies (8-14 s with the defaults).
    leader_election_lease_seconds: int = Field(default=10, ge=2)
    # The leader exits when it could not renew for this long (seconds): below the lease, so it has stopped
    # before any standby can take over.
    leader_election_renew_deadline_seconds: int = Field(default=7, ge=1)
    # Seconds between the leader's renewals and between a standby's attempts.
    leader_election_retry_period_seconds: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _webhooks_secret_has_a_namespace(self) -> Self:
        if self.webhooks_secret and not self.webhooks_namespace:
            raise ValueError("webhooks_secret needs webhooks_namespace (the chart sets the pod's own)")
        return self

    @model_validator(mode="after")
    def _one_way_to_name_namespaces(self) -> Self:
        if self.namespace_selector and self.watch_namespaces:
            raise ValueError("set watch_namespaces or namespace_selector, not both")
        return self

    @model_validator(mode="after")
    def _leader_election_is_consistent(self) -> Self:
        if not self.leader_election:
            return self
        if not self.leader_election_namespace:
            raise ValueError("leader_election needs leader_election_namespace (the chart sets the pod's own)")
        lease, renew = self.leader_election_lease_seconds, self.leader_election_renew_deadline_seconds
        retry = self.leader_election_retry_period_seconds
        # the kubernetes client's own checks (electionconfig.Config), which would sys.exit() instead
        if not lease > renew > 1.2 * retry:
            raise ValueError(
                "leader election needs lease_seconds > renew_deadline_seconds > 1.2 x retry_period_seconds"
            )
        return self
