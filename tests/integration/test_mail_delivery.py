"""The deploy report over real SMTP: one message per finished run, retried while the sink is down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from harness import ROOT, Cluster, MailSink, assert_stays, smtp_server, wait_until

from tlsutil import self_signed, server_context

TINY = str(ROOT / "tests" / "data" / "charts" / "tiny")


@pytest.fixture
def smtp_port(unused_tcp_port: int) -> int:
    return unused_tcp_port


@pytest.fixture
def sink(smtp_port: int) -> Iterator[MailSink]:
    with smtp_server(MailSink(), port=smtp_port) as s:
        yield s


def condition(cluster: Cluster, namespace: str, run: str, kind: str) -> dict[str, Any] | None:
    body = cluster.try_get_json("e2erun", "-n", namespace, run) or {}
    return next((c for c in body.get("status", {}).get("conditions", []) if c["type"] == kind), None)


def test_upgrade_sends_exactly_one_report_per_run_with_both_parts_and_the_failing_log(
    cluster: Cluster, namespace: str, start_operator: Any, sink: MailSink, smtp_port: int, logdir: Path
) -> None:
    start_operator(
        smtp_host="127.0.0.1", smtp_port=str(smtp_port), mail_to="dev@example.com", cluster_name="local"
    )
    cluster.helm("install", "shop", TINY, "-n", namespace)
    wait_until(lambda: len(sink.messages) == 1, what="the install report")
    cluster.serve_log(
        namespace=namespace,
        pod="shop-2-shop-smoke",
        workdir=logdir,
        lines=["E   assert 503 == 200", "<script>alert('x')</script>"],
    )
    cluster.helm(
        "upgrade", "shop", TINY, "-n", namespace, "--set", "test.exitCode=1", "--set", "image.tag=9.9.9"
    )
    wait_until(lambda: len(sink.messages) == 2, what="the upgrade report")

    report = sink.messages[1]
    assert report["Subject"] == "[helm-e2e] shop r2 in local: FAILED 0/1 (1 new)"  # r1 passed
    assert report["To"] == "dev@example.com"
    assert report.get_content_type() == "multipart/alternative"
    text = report.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = report.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "assert 503 == 200" in text
    assert "9.9.9" in text
    assert "&lt;script&gt;" in html
    assert "<script>" not in html
    uid = cluster.get_json("e2erun", "-n", namespace, "shop-2")["metadata"]["uid"]
    assert report["Message-ID"] == f"<e2erun.{uid}@helm-e2e.dev>"

    sent = condition(cluster, namespace, "shop-2", "EmailSent")
    assert sent is not None
    assert (sent["status"], sent["reason"], sent["message"]) == ("True", "Sent", "sent to 1 recipient(s)")
    assert_stays(lambda: len(sink.messages) == 2, seconds=4, what="no second copy")


def test_report_waits_for_a_down_smtp_server_and_arrives_once_when_it_is_back(
    cluster: Cluster, namespace: str, start_operator: Any, smtp_port: int
) -> None:
    start_operator(
        smtp_host="127.0.0.1",
        smtp_port=str(smtp_port),
        mail_to="dev@example.com",
        smtp_retry_base_seconds="0.5",
    )
    cluster.helm("install", "late", TINY, "-n", namespace)
    failing = wait_until(
        lambda: (c := condition(cluster, namespace, "late-1", "EmailSent")) and c["status"] == "False" and c,
        what="EmailSent=False while the sink is down",
    )
    assert failing["reason"] == "Retrying"
    assert cluster.get_json("e2erun", "-n", namespace, "late-1")["status"]["phase"] == "Succeeded"

    sink = MailSink()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        wait_until(lambda: len(sink.messages) == 1, timeout=60, what="the report once the sink is back")
        wait_until(
            lambda: (c := condition(cluster, namespace, "late-1", "EmailSent")) and c["status"] == "True",
            what="EmailSent=True",
        )
        assert_stays(lambda: len(sink.messages) == 1, seconds=3, what="exactly one message")
    finally:
        controller.stop()


def test_without_smtp_nothing_is_sent_and_the_condition_says_disabled(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    op = start_operator()
    cluster.helm("install", "quiet", TINY, "-n", namespace)
    sent = wait_until(
        lambda: condition(cluster, namespace, "quiet-1", "EmailSent"), what="EmailSent condition"
    )
    assert (sent["status"], sent["reason"]) == ("False", "Disabled")
    op.assert_alive()


def test_starttls_with_a_self_signed_certificate_and_auth_through_the_operator(
    cluster: Cluster, namespace: str, start_operator: Any, smtp_port: int, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    sink = MailSink()

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        return AuthResult(
            success=isinstance(data, LoginPassword)
            and (data.login, data.password) == (b"bot", b"s3cret-Pw-42")
        )

    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=smtp_port,
        tls_context=server_context(cert, key),
        require_starttls=True,
        authenticator=authenticate,
        auth_require_tls=True,
    )
    controller.start()
    try:
        op = start_operator(
            smtp_host="127.0.0.1",
            smtp_port=str(smtp_port),
            smtp_tls="starttls",
            smtp_ca_file=str(cert),
            smtp_username="bot",
            smtp_password="s3cret-Pw-42",
            mail_to="dev@example.com",
        )
        cluster.helm("install", "tls", TINY, "-n", namespace)
        wait_until(lambda: len(sink.messages) == 1, what="the report over STARTTLS + AUTH")
        assert sink.messages[0]["Subject"].endswith("tls r1 in " + namespace + ": PASSED 1/1")
        assert "s3cret-Pw-42" not in op.logs()
    finally:
        controller.stop()
