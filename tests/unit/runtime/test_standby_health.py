"""A standby answers the kubelet's probes on kopf's liveness endpoint, and frees the port for kopf."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from helm_e2e.runtime.standby_health import serve_standby_health


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a local http URL
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


def test_standby_answers_the_liveness_path_and_nothing_else() -> None:
    port = free_port()
    with serve_standby_health(f"http://127.0.0.1:{port}/healthz"):
        assert status(f"http://127.0.0.1:{port}/healthz") == 200
        assert status(f"http://127.0.0.1:{port}/other") == 404


def test_the_port_is_free_for_kopf_once_the_standby_leads() -> None:
    port = free_port()
    with serve_standby_health(f"http://127.0.0.1:{port}/healthz"):
        pass
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds
        s.bind(("127.0.0.1", port))
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)


def test_no_endpoint_serves_nothing() -> None:
    with serve_standby_health(""):
        pass
