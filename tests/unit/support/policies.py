"""The lifecycle policy the pure decision tests share: mail on (to ops@example.com), cancelled runs reported."""

from __future__ import annotations

from helm_e2e.core.lifecycle.decide import Policy

MAILING = Policy(
    resync_seconds=5,
    pod_ttl_seconds=60,
    mail_to=("ops@example.com",),
    report_cancelled=True,
    smtp_enabled=True,
    mail_retry_base_seconds=2,
)
