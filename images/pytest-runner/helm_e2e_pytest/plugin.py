"""pytest plugin for helm-e2e test pods.

- `--release`, `--namespace`, `--revision`, `--image-tag` default to the HELM_E2E_* environment the
  operator injects, and are fixtures of the same names (plus `helm_e2e` with everything).
- At the end of the session a JSON summary goes to the termination log (< 4 KiB, parsed by the operator
  into `status.tests[].pytest`) and JUnit XML to a file (pytest's own junitxml).
- With HELM_E2E_ARTIFACTS_DIR set, junit.xml and pytest's output go there (see artifacts.py).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from . import artifacts

TERMINATION_LOG = "/dev/termination-log"
JUNIT_FILE = "/reports/junit.xml"
MAX_SUMMARY_BYTES = 4096 - 96  # kubelet keeps 4096 bytes of the termination message; leave headroom
MAX_FAILURES = 5
MAX_NODEID = 200

_counts_key = pytest.StashKey[dict[str, Any]]()


@dataclass(frozen=True)
class HelmE2E:
    release: str
    namespace: str
    revision: int
    image_tag: str
    run: str
    chart_version: str


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("helm-e2e", "helm-e2e release under test")
    env = os.environ.get
    group.addoption("--release", default=env("HELM_E2E_RELEASE", ""), help="Helm release (HELM_E2E_RELEASE)")
    group.addoption(
        "--namespace", default=env("HELM_E2E_NAMESPACE", ""), help="namespace (HELM_E2E_NAMESPACE)"
    )
    group.addoption(
        "--revision",
        type=int,
        default=int(env("HELM_E2E_REVISION", "0") or 0),
        help="release revision (HELM_E2E_REVISION)",
    )
    group.addoption(
        "--image-tag", default=env("HELM_E2E_IMAGE_TAG", ""), help="image tag (HELM_E2E_IMAGE_TAG)"
    )
    group.addoption(
        "--termination-log",
        default=env("HELM_E2E_TERMINATION_LOG", TERMINATION_LOG),
        help="where the JSON summary goes (HELM_E2E_TERMINATION_LOG)",
    )
    group.addoption(
        "--junit-file",
        default=env("HELM_E2E_JUNIT_FILE", JUNIT_FILE),
        help="JUnit XML path when --junitxml is not given (HELM_E2E_JUNIT_FILE)",
    )


def _writable_dir(path: str) -> bool:
    parent = Path(path).parent
    return parent.is_dir() and os.access(parent, os.W_OK)


def _can_write(path: str) -> bool:
    """An existing writable file (kubelet's /dev/termination-log: mode 0666 in a root-owned /dev), or a
    new file in a writable directory."""
    target = Path(path)
    return os.access(target, os.W_OK) if target.exists() else _writable_dir(path)


@pytest.hookimpl(tryfirst=True)  # before pytest's junitxml plugin reads the option
def pytest_configure(config: pytest.Config) -> None:
    config.stash[_counts_key] = {
        "passed": 0,
        "failed": 0,
        "skipped": 0,
        "errors": 0,
        "failures": [],
        "start": time.monotonic(),
    }
    junit = config.getoption("--junit-file")
    artifacts.configure(config, junit_default=junit if junit and _writable_dir(junit) else "")


@pytest.hookimpl(trylast=True, specname="pytest_configure")  # after the terminal reporter exists
def pytest_configure_keep_output(config: pytest.Config) -> None:
    artifacts.start_output_copy(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    artifacts.write_output(config)


def _count(counts: dict[str, Any], report: pytest.TestReport) -> None:
    if report.when == "call":
        if report.passed:
            counts["passed"] += 1
        elif report.failed:
            counts["failed"] += 1
            counts["failures"].append(report.nodeid)
        elif report.skipped:
            counts["skipped"] += 1
    elif report.failed:  # setup/teardown error
        counts["errors"] += 1
        counts["failures"].append(report.nodeid)
    elif report.when == "setup" and report.skipped:
        counts["skipped"] += 1


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    _count(item.config.stash[_counts_key], report)


def build_summary(counts: dict[str, Any], *, duration: float, exit_status: int) -> str:
    failures = [
        f if len(f) <= MAX_NODEID else f[: MAX_NODEID - 3] + "..." for f in counts["failures"][:MAX_FAILURES]
    ]
    while True:
        text = json.dumps(
            {
                "passed": counts["passed"],
                "failed": counts["failed"],
                "skipped": counts["skipped"],
                "errors": counts["errors"],
                "durationSeconds": round(duration, 3),
                "firstFailures": failures,
                "exitStatus": exit_status,
            },
            ensure_ascii=False,
        )
        if len(text.encode()) <= MAX_SUMMARY_BYTES or not failures:
            return text
        failures = failures[:-1]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    counts = config.stash[_counts_key]
    if session.testsfailed and not counts["failed"] and not counts["errors"]:
        counts["errors"] = session.testsfailed  # collection errors
    summary = build_summary(counts, duration=time.monotonic() - counts["start"], exit_status=int(exitstatus))
    path = config.getoption("--termination-log")
    if path and _can_write(path):
        Path(path).write_text(summary)
    else:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"helm-e2e: termination log {path} not writable; summary not written")


@pytest.fixture(scope="session")
def helm_e2e(pytestconfig: pytest.Config) -> HelmE2E:
    opt = pytestconfig.getoption
    return HelmE2E(
        release=opt("--release"),
        namespace=opt("--namespace"),
        revision=opt("--revision"),
        image_tag=opt("--image-tag"),
        run=os.environ.get("HELM_E2E_RUN", ""),
        chart_version=os.environ.get("HELM_E2E_CHART_VERSION", ""),
    )


@pytest.fixture(scope="session")
def release(helm_e2e: HelmE2E) -> str:
    return helm_e2e.release


@pytest.fixture(scope="session")
def namespace(helm_e2e: HelmE2E) -> str:
    return helm_e2e.namespace


@pytest.fixture(scope="session")
def revision(helm_e2e: HelmE2E) -> int:
    return helm_e2e.revision


@pytest.fixture(scope="session")
def image_tag(helm_e2e: HelmE2E) -> str:
    return helm_e2e.image_tag
