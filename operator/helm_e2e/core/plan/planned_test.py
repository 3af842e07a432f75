"""One planned test (pure data): what `plan` and `hooks` produce and the pod/job builders consume.

Kept apart from plan.py so that hooks.py (chart test hooks) and plan.py (suites, run spec, pods) can both
build it without importing each other.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class PlannedTest(BaseModel):
    name: str
    source: str  # "hook" | "suite/<name>"
    timeout_seconds: int
    pod_spec: dict[str, Any]
    labels: dict[str, str] = Field(default_factory=dict)  # of the pod (a Job's pod template)
    annotations: dict[str, str] = Field(default_factory=dict)  # of the pod (a Job's pod template)
    kind: Literal["Pod", "Job"] = "Pod"
    job_spec: dict[str, Any] = Field(default_factory=dict)  # a Job's spec without its template
    job_labels: dict[str, str] = Field(default_factory=dict)
    job_annotations: dict[str, str] = Field(default_factory=dict)
    blocked: str = ""  # why it must not run (a refused hook of its hook set): end it Error, create nothing
    policy_violation: str = ""  # one line naming the offending field(s); such a test is never created
    retries: int | None = None  # further attempts after a Failed one; None: the operator default
    log_on_success: bool = False  # `helm.sh/hook-output-log-policy: hook-succeeded`: its log in the report
    token_allowed: bool = False  # names an allowed ServiceAccount: its API token may be mounted
