"""The demo's pytest suite (images/demo-e2e) run for real against the demo service on this machine, with
the helm-e2e plugin and an artifacts directory: junit.xml, the output and its own responses.json."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from repo_paths import ROOT

from helm_e2e.core.results.junit_reader import Outcome, failures_from_junit, parse_junit

PYTEST = [sys.executable, "-m", "pytest", "-p", "helm_e2e_pytest.plugin", "-p", "no:cacheprovider"]
SECRET = "s" * 43
JWKS = {
    "keys": [
        {
            "kty": "oct",
            "kid": "demo-1",
            "alg": "HS256",
            "k": jwt.utils.base64url_encode(SECRET.encode()).decode(),
        }
    ]
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def service(tmp_path: Path) -> Iterator[str]:
    """The demo service (images/demo-service) on a local port, expecting the audience `demo-service`."""
    (tmp_path / "jwks.json").write_text(json.dumps(JWKS))
    port = free_port()
    env = {**os.environ, "PORT": str(port), "APP_VERSION": "1.1.0", "JWT_AUDIENCE": "demo-service"}
    env["JWKS_FILE"] = str(tmp_path / "jwks.json")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "images" / "demo-service" / "demo_service.py")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1):  # noqa: S310 (a local http URL)
                    break
            except OSError:
                assert time.monotonic() < deadline, "the demo service did not start"
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run_demo_tests(tmp_path: Path, url: str, *, audience: str) -> tuple[int, Path]:
    tests, artifacts = tmp_path / "tests", tmp_path / "artifacts"
    shutil.copytree(ROOT / "images" / "demo-e2e" / "tests", tests)
    artifacts.mkdir()
    token = jwt.encode(
        {"sub": "helm-e2e", "aud": audience, "exp": int(time.time()) + 300},
        SECRET,
        algorithm="HS256",
        headers={"kid": "demo-1"},
    )
    (tmp_path / "token").write_text(token)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HELM_E2E_", "PYTEST_"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT / "images" / "pytest-runner"),
            "BASE_URL": url,
            "EXPECTED_VERSION": "1.1.0",
            "ACCESS_TOKEN_FILE": str(tmp_path / "token"),
            "HELM_E2E_ARTIFACTS_DIR": str(artifacts),
            "HELM_E2E_TERMINATION_LOG": str(tmp_path / "termination-log"),
        }
    )
    proc = subprocess.run(
        [*PYTEST, "-q", "-c", os.devnull, "--rootdir", str(tests), str(tests)],
        cwd=tests,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert token not in proc.stdout
    for path in artifacts.iterdir():
        assert token not in path.read_text(), f"{path.name} holds the token"
    return proc.returncode, artifacts


def test_the_passing_demo_suite_leaves_junit_output_and_its_responses(tmp_path: Path, service: str) -> None:
    code, artifacts = run_demo_tests(tmp_path, service, audience="demo-service")
    assert code == 0
    assert sorted(p.name for p in artifacts.iterdir()) == ["junit.xml", "pytest-output.txt", "responses.json"]
    cases = parse_junit((artifacts / "junit.xml").read_bytes()).cases
    assert [(c.id, c.outcome) for c in cases] == [
        ("test_demo_api.py::test_service_is_healthy", Outcome.PASSED),
        ("test_demo_api.py::test_deployed_version_is_the_released_image_tag", Outcome.PASSED),
        ("test_demo_api.py::test_api_refuses_a_request_without_a_token", Outcome.PASSED),
        ("test_demo_api.py::test_api_accepts_the_minted_token", Outcome.PASSED),
    ]
    responses = json.loads((artifacts / "responses.json").read_text())
    assert [(r["test"], r["path"], r["withToken"], r["status"]) for r in responses] == [
        ("test_demo_api.py::test_service_is_healthy", "/healthz", False, 200),
        ("test_demo_api.py::test_deployed_version_is_the_released_image_tag", "/version", False, 200),
        ("test_demo_api.py::test_api_refuses_a_request_without_a_token", "/api/greeting", False, 401),
        ("test_demo_api.py::test_api_accepts_the_minted_token", "/api/greeting", True, 200),
    ]
    assert "4 passed" in (artifacts / "pytest-output.txt").read_text()


def test_a_refused_token_is_a_failing_pytest_id_with_its_message(tmp_path: Path, service: str) -> None:
    code, artifacts = run_demo_tests(tmp_path, service, audience="someone-else")
    assert code == 1
    (failure,) = failures_from_junit((artifacts / "junit.xml").read_bytes())
    assert failure.id == "test_demo_api.py::test_api_accepts_the_minted_token"
    assert failure.message.startswith("AssertionError: the service refused the token minted by jwt-setup: ")
    assert "InvalidAudienceError" in failure.message
    responses = json.loads((artifacts / "responses.json").read_text())
    assert responses[-1]["status"] == 401
    assert "InvalidAudienceError" in responses[-1]["body"]
