"""The artifacts service as the artifacts tests build it: a store under tmp_path, small quotas, the run that
uploads (web r3 in shop), failures parsed from `FAIL:` lines, a bundle written to a file."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import runs

from helm_e2e.artifacts.service import Artifacts
from helm_e2e.artifacts.store import open_store
from helm_e2e.core.model.run_status import PytestFailure
from helm_e2e.settings import Settings

NOW = datetime.now(UTC)


def artifact_settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(
        artifacts_store=str(tmp_path / "store"),
        artifacts_url="http://op:8081",
        collector_image="img",
        artifacts_max_test_bytes=kw.pop("max_test", 10_000),
        artifacts_max_run_bytes=kw.pop("max_run", 15_000),
        artifacts_max_files=kw.pop("max_files", 20),
        **kw,
    )


# web r3 in shop (chart web 1), the run whose tests upload
upload_run = functools.partial(
    runs.make_run, release={"revision": 3, "chart": "web", "chart_version": "1"}, uid="uid-1"
)


def fail_lines(data: bytes) -> list[PytestFailure]:
    return [PytestFailure(id=line) for line in data.decode().split() if line.startswith("FAIL:")]


def artifact_service(tmp_path: Path) -> Artifacts:
    return Artifacts(
        open_store(str(tmp_path / "store")), artifact_settings(tmp_path), parse_failures=fail_lines
    )


def bundle_at(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "upload.tgz"
    path.write_bytes(data)
    return path
