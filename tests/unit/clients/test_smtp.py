"""SMTP delivery against a real aiosmtpd server on 127.0.0.1: plain, STARTTLS + AUTH, TLS; one attempt per send."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr

from helm_e2e.clients.smtp import send_email
from helm_e2e.errors import MailError
from helm_e2e.settings import Settings
from tlsutil import self_signed, server_context

PASSWORD = "s3cret-Pa55"


class Sink:
    """An aiosmtpd handler: records every DATA attempt; scripted replies are answered first."""

    def __init__(self, replies: list[str] | None = None, refuse: dict[str, str] | None = None) -> None:
        self.messages: list[bytes] = []
        self.data_attempts = 0
        self.replies = replies or []
        self.refuse = refuse or {}
        self.auth: list[tuple[str, bytes]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_attempts += 1
        if self.replies:
            return self.replies.pop(0)
        self.messages.append(envelope.content)
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        self.auth.append((mechanism, auth_data.login))
        ok = (auth_data.login, auth_data.password) == (b"bot", PASSWORD.encode())
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 on failure


def make_message(to: str = "a@x.io") -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "e2e@x.io", to, "[helm-e2e] web r3 in prod: PASSED 1/1"
    m["Message-ID"] = "<e2erun.u1@helm-e2e.dev>"
    m.set_content("text part")
    m.add_alternative("<p>html part</p>", subtype="html")
    return m


def make_settings(port: int, **kw: Any) -> Settings:
    return Settings(
        smtp_host="127.0.0.1", smtp_port=port, smtp_retry_base_seconds=0.5, smtp_timeout_seconds=5, **kw
    )


@pytest.fixture(autouse=True)
async def _tls_connections_finish_closing() -> AsyncIterator[None]:
    """A failed TLS connection is closed asynchronously (close_notify with the peer); the test's event
    loop must live on for that, or Python warns about an unclosed transport. Production loops live on."""
    yield
    await asyncio.sleep(0.1)


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


@pytest.fixture
def smtp_server(unused_tcp_port: int) -> Iterator[Any]:
    """Start a real aiosmtpd server: smtp_server(sink, **controller_kwargs) -> port."""
    controllers: list[Controller] = []

    def start(sink: Sink, **kw: Any) -> int:
        controller = Controller(sink, hostname="127.0.0.1", port=unused_tcp_port, **kw)
        controller.start()
        controllers.append(controller)
        return unused_tcp_port

    yield start
    for controller in controllers:
        controller.stop()


async def test_delivers_the_message_once_with_both_parts_and_its_message_id(smtp_server: Any) -> None:
    sink = Sink()
    port = smtp_server(sink)
    await send_email(make_message(), settings=make_settings(port))
    assert len(sink.messages) == 1
    received = email.message_from_bytes(sink.messages[0], policy=email.policy.default)
    assert received.get_content_type() == "multipart/alternative"
    parts = [(p.get_content_type(), p.get_content().strip()) for p in received.iter_parts()]
    assert parts == [("text/plain", "text part"), ("text/html", "<p>html part</p>")]
    assert received["Message-ID"] == "<e2erun.u1@helm-e2e.dev>"


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_starttls_with_a_self_signed_certificate_and_auth(
    smtp_server: Any, tls_files: tuple[Path, Path], mechanism: str
) -> None:
    sink = Sink()
    port = smtp_server(
        sink,
        tls_context=server_context(*tls_files),
        require_starttls=True,
        authenticator=sink.authenticate,
        auth_require_tls=True,
        auth_exclude_mechanism=[m for m in ("PLAIN", "LOGIN") if m != mechanism],
    )
    cfg = make_settings(
        port,
        smtp_tls="starttls",
        smtp_ca_file=str(tls_files[0]),
        smtp_username="bot",
        smtp_password=PASSWORD,
    )
    await send_email(make_message(), settings=cfg)
    assert len(sink.messages) == 1
    assert sink.auth == [(mechanism, b"bot")]


async def test_a_wrong_password_is_permanent_and_never_appears_in_the_error(
    smtp_server: Any, tls_files: tuple[Path, Path]
) -> None:
    sink = Sink()
    port = smtp_server(
        sink,
        tls_context=server_context(*tls_files),
        require_starttls=True,
        authenticator=sink.authenticate,
        auth_require_tls=True,
    )
    cfg = make_settings(
        port,
        smtp_tls="starttls",
        smtp_ca_file=str(tls_files[0]),
        smtp_username="bot",
        smtp_password=SecretStr("wrong-Pa55word"),
    )
    with pytest.raises(MailError) as info:
        await send_email(make_message(), settings=cfg)
    assert info.value.permanent is True
    assert "535" in str(info.value)
    assert "wrong-Pa55word" not in str(info.value)
    assert sink.messages == []


async def test_a_certificate_from_an_unknown_ca_is_refused_without_retrying(
    smtp_server: Any, tls_files: tuple[Path, Path], tmp_path: Path
) -> None:
    port = smtp_server(Sink(), tls_context=server_context(*tls_files), require_starttls=True)
    (tmp_path / "other").mkdir()
    other_ca, _ = self_signed(tmp_path / "other")
    with pytest.raises(MailError) as info:
        await send_email(
            make_message(), settings=make_settings(port, smtp_tls="starttls", smtp_ca_file=str(other_ca))
        )
    assert info.value.permanent is True
    assert "certificate verification failed" in str(info.value)


async def test_a_missing_ca_file_is_a_permanent_error(tmp_path: Path) -> None:
    cfg = make_settings(1, smtp_tls="tls", smtp_ca_file=str(tmp_path / "absent.pem"))
    with pytest.raises(MailError) as info:
        await send_email(make_message(), settings=cfg)
    assert info.value.permanent is True
    assert "absent.pem" in str(info.value)


async def test_implicit_tls(smtp_server: Any, tls_files: tuple[Path, Path]) -> None:
    sink = Sink()
    port = smtp_server(sink, ssl_context=server_context(*tls_files))
    cfg = make_settings(port, smtp_tls="tls", smtp_ca_file=str(tls_files[0]))
    await send_email(make_message(), settings=cfg)
    assert len(sink.messages) == 1


async def test_server_down_is_one_transient_failure_without_waiting(unused_tcp_port: int) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(MailError) as info:
        await send_email(make_message(), settings=make_settings(unused_tcp_port))
    assert info.value.permanent is False
    assert f"127.0.0.1:{unused_tcp_port}" in str(info.value)
    assert loop.time() - started < 2  # no backoff here: the run's outbox retries later


async def test_a_5xx_answer_is_permanent_after_exactly_one_attempt(smtp_server: Any) -> None:
    sink = Sink(replies=["550 5.7.1 message rejected"])
    port = smtp_server(sink)
    with pytest.raises(MailError) as info:
        await send_email(make_message(), settings=make_settings(port))
    assert info.value.permanent is True
    assert "550" in str(info.value)
    assert (sink.data_attempts, sink.messages) == (1, [])


async def test_a_4xx_answer_is_transient_after_exactly_one_attempt(smtp_server: Any) -> None:
    sink = Sink(replies=["451 4.3.0 try again later"])
    port = smtp_server(sink)
    with pytest.raises(MailError) as info:
        await send_email(make_message(), settings=make_settings(port))
    assert info.value.permanent is False
    assert (sink.data_attempts, sink.messages) == (1, [])


async def test_refused_recipients_are_permanent(smtp_server: Any) -> None:
    sink = Sink(refuse={"a@x.io": "550 5.1.1 no such user"})
    port = smtp_server(sink)
    with pytest.raises(MailError) as info:
        await send_email(make_message(), settings=make_settings(port))
    assert info.value.permanent is True
    assert "recipient(s) refused [550]" in str(info.value)
    assert sink.data_attempts == 0


async def test_greylisted_recipients_are_transient(smtp_server: Any) -> None:
    sink = Sink(refuse={"a@x.io": "450 4.2.0 greylisted"})
    port = smtp_server(sink)
    with pytest.raises(MailError) as info:
        await send_email(make_message(), settings=make_settings(port))
    assert info.value.permanent is False
    assert sink.data_attempts == 0


async def test_an_address_smtp_cannot_carry_is_permanent_and_not_quoted(smtp_server: Any) -> None:
    sink = Sink()
    port = smtp_server(sink)
    with pytest.raises(MailError) as info:
        await send_email(make_message(to="<<secret-name>>"), settings=make_settings(port))
    assert info.value.permanent is True
    assert "secret-name" not in str(info.value)
    assert sink.messages == []


async def test_a_partly_refused_message_reaches_the_others_and_is_not_sent_again(smtp_server: Any) -> None:
    sink = Sink(refuse={"gone@x.io": "550 5.1.1 no such user"})
    port = smtp_server(sink)
    await send_email(make_message(to="a@x.io, gone@x.io"), settings=make_settings(port))
    assert len(sink.messages) == 1
    assert sink.data_attempts == 1
