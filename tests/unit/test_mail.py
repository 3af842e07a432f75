"""SMTP delivery against a real aiosmtpd server on 127.0.0.1: plain, STARTTLS + AUTH, TLS, retries."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from helm_e2e.adapters.mail import send_email
from helm_e2e.config import Settings
from helm_e2e.errors import MailError
from tlsutil import self_signed
from tlsutil import server_context as tls_server_context


class Sink:
    def __init__(self, replies: list[str] | None = None) -> None:
        self.messages: list[bytes] = []
        self.replies = replies or []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.replies:
            return self.replies.pop(0)
        self.messages.append(envelope.content)
        return "250 OK"


def message() -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Message-ID"] = "e2e@x.io", "a@x.io", "hi", "<e2erun.u1@helm-e2e.dev>"
    m.set_content("text")
    m.add_alternative("<p>html</p>", subtype="html")
    return m


def settings(port: int, **kw: Any) -> Settings:
    return Settings(
        smtp_host="127.0.0.1", smtp_port=port, smtp_retry_base_seconds=0.5, smtp_timeout_seconds=5, **kw
    )


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


def server_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    return tls_server_context(*tls_files)


@pytest.fixture
def plain_sink(unused_tcp_port: int) -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=unused_tcp_port)
    controller.start()
    yield sink, unused_tcp_port
    controller.stop()


async def test_delivers_one_message_with_both_parts(plain_sink: tuple[Sink, int]) -> None:
    sink, port = plain_sink
    await send_email(message(), settings=settings(port))
    assert len(sink.messages) == 1
    raw = sink.messages[0].decode()
    assert "multipart/alternative" in raw
    assert "Message-ID: <e2erun.u1@helm-e2e.dev>" in raw


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"bot", b"s3cret")
    return AuthResult(success=ok)


async def test_starttls_with_a_self_signed_certificate_and_auth(
    unused_tcp_port: int, tls_files: tuple[Path, Path]
) -> None:
    sink = Sink()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=unused_tcp_port,
        tls_context=server_context(tls_files),
        require_starttls=True,
        authenticator=_authenticator,
        auth_require_tls=True,
    )
    controller.start()
    try:
        cfg = settings(
            unused_tcp_port,
            smtp_tls="starttls",
            smtp_ca_file=str(tls_files[0]),
            smtp_username="bot",
            smtp_password="s3cret",
        )
        await send_email(message(), settings=cfg)
        assert len(sink.messages) == 1
        wrong = cfg.model_copy(
            update={"smtp_password": cfg.smtp_password.__class__("nope"), "smtp_max_attempts": 1}
        )
        with pytest.raises(MailError) as info:
            await send_email(message(), settings=wrong)
        assert "nope" not in str(info.value)
        assert "s3cret" not in str(info.value)
    finally:
        controller.stop()


async def test_implicit_tls(unused_tcp_port: int, tls_files: tuple[Path, Path]) -> None:
    sink = Sink()
    controller = Controller(
        sink, hostname="127.0.0.1", port=unused_tcp_port, ssl_context=server_context(tls_files)
    )
    controller.start()
    try:
        await send_email(
            message(), settings=settings(unused_tcp_port, smtp_tls="tls", smtp_ca_file=str(tls_files[0]))
        )
        assert len(sink.messages) == 1
    finally:
        controller.stop()


async def test_server_down_is_retried_with_backoff_then_reported_as_transient(unused_tcp_port: int) -> None:
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    with pytest.raises(MailError) as info:
        await send_email(message(), settings=settings(unused_tcp_port, smtp_max_attempts=4), sleep=fake_sleep)
    assert info.value.permanent is False
    assert delays == [0.5, 1.0, 2.0]


async def test_a_5xx_answer_is_permanent_after_one_attempt(unused_tcp_port: int) -> None:
    sink = Sink(replies=["550 mailbox unavailable"])
    controller = Controller(sink, hostname="127.0.0.1", port=unused_tcp_port)
    controller.start()
    try:
        with pytest.raises(MailError) as info:
            await send_email(message(), settings=settings(unused_tcp_port))
        assert info.value.permanent is True
        assert "550" in str(info.value)
        assert sink.messages == []
    finally:
        controller.stop()


async def test_a_4xx_answer_is_retried_and_delivered_once(unused_tcp_port: int) -> None:
    sink = Sink(replies=["451 try again later"])
    controller = Controller(sink, hostname="127.0.0.1", port=unused_tcp_port)
    controller.start()
    try:

        async def no_sleep(_: float) -> None:
            return None

        await send_email(message(), settings=settings(unused_tcp_port), sleep=no_sleep)
        assert len(sink.messages) == 1
    finally:
        controller.stop()
