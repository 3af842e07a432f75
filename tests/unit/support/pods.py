"""Test pods as the Kubernetes API returns them (their phase, the main and init containers' termination),
for the pure result and diagnostics tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def pod(
    phase: str,
    *,
    exit_code: int | None = None,
    message: str = "",
    init_exit: int | None = None,
    started: datetime = T0,
    finished: datetime | None = None,
    reason: str = "",
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "startTime": iso(started)}
    if reason:
        status["reason"] = reason
    if exit_code is not None:
        status["containerStatuses"] = [
            {
                "name": "main",
                "state": {
                    "terminated": {
                        "exitCode": exit_code,
                        "reason": "Completed" if exit_code == 0 else "Error",
                        "message": message,
                        "startedAt": iso(started),
                        "finishedAt": iso(finished or started + timedelta(seconds=3)),
                    }
                },
            }
        ]
    if init_exit is not None:
        status["initContainerStatuses"] = [
            {
                "name": "jwt-setup",
                "state": {"terminated": {"exitCode": init_exit, "message": "no key"}},
            }
        ]
    return {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "main"}]}, "status": status}
