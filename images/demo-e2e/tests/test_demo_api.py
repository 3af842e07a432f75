"""End-to-end tests of the example demo service, run by helm-e2e after every deploy.

The service address comes from Kubernetes' service-link variables (<NAME>_SERVICE_HOST/_PORT) when
the pod has them, so no cluster DNS is needed; otherwise from BASE_URL.

What the service answered (path, status, body; never the token) is left in the artifacts directory
as `responses.json`, beside the junit.xml and output the helm-e2e plugin writes there.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MAX_BODY_CHARS = 2000
SEEN: list[dict[str, Any]] = []  # every answer, for responses.json


def base_url() -> str:
    prefix = os.environ.get("SERVICE_NAME", "").upper().replace("-", "_")
    host, port = os.environ.get(f"{prefix}_SERVICE_HOST"), os.environ.get(f"{prefix}_SERVICE_PORT")
    url = f"http://{host}:{port}" if prefix and host and port else os.environ["BASE_URL"]
    assert url.startswith(("http://", "https://")), f"BASE_URL must be http(s): {url!r}"
    return url


def get(path: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(base_url() + path)  # noqa: S310 (scheme checked in base_url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            body = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as e:
        body, status = e.read().decode(), e.code
    SEEN.append(
        {
            "test": os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0],
            "path": path,
            "withToken": bool(token),
            "status": status,
            "body": body[:MAX_BODY_CHARS],
        }
    )
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


@pytest.fixture(scope="module", autouse=True)
def responses_json() -> Iterator[None]:
    """After the module's tests: SEEN as responses.json in HELM_E2E_ARTIFACTS_DIR, when it is writable."""
    yield
    directory = Path(os.environ.get("HELM_E2E_ARTIFACTS_DIR", "") or "/nonexistent")
    if directory.is_dir() and os.access(directory, os.W_OK):
        (directory / "responses.json").write_text(json.dumps(SEEN, indent=2) + "\n")


def test_service_is_healthy() -> None:
    assert get("/healthz") == (200, "ok")


def test_deployed_version_is_the_released_image_tag() -> None:
    status, body = get("/version")
    assert status == 200
    assert body["version"] == os.environ["EXPECTED_VERSION"]


def test_api_refuses_a_request_without_a_token() -> None:
    status, body = get("/api/greeting")
    assert status == 401, body


def test_api_accepts_the_minted_token() -> None:
    token = Path(os.environ["ACCESS_TOKEN_FILE"]).read_text().strip()
    status, body = get("/api/greeting", token)
    assert status == 200, f"the service refused the token minted by jwt-setup: {body}"
    assert body["subject"] == "helm-e2e"
