"""Sending the report over SMTP with aiosmtplib: TLS modes, optional auth, timeouts, retries."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from email.message import EmailMessage

import aiosmtplib
import structlog

from ..config import Settings, SmtpTls
from ..errors import MailError

log = structlog.get_logger(__name__)
Sleep = Callable[[float], Awaitable[None]]


def _tls_context(settings: Settings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.smtp_ca_file or None)


async def _send_once(message: EmailMessage, settings: Settings) -> None:
    tls = settings.smtp_tls
    await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username or None,
        password=settings.smtp_password.get_secret_value() or None if settings.smtp_username else None,
        use_tls=tls == SmtpTls.TLS,
        start_tls=tls == SmtpTls.STARTTLS,
        tls_context=_tls_context(settings) if tls != SmtpTls.NONE else None,
        timeout=settings.smtp_timeout_seconds,
    )


def _classify(error: Exception) -> tuple[bool, str]:
    """(permanent, message) — 5xx and refused recipients are permanent, the rest is worth a retry."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return True, f"all recipients refused ({len(error.recipients)})"
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return error.code >= 500, f"server answered {error.code} {error.message.strip()[:200]}"
    if isinstance(error, aiosmtplib.SMTPException | OSError | TimeoutError):
        return False, f"{type(error).__name__}: {str(error)[:200] or 'no detail'}"
    raise error


async def send_email(message: EmailMessage, *, settings: Settings, sleep: Sleep = asyncio.sleep) -> None:
    """Deliver once, retrying transient failures with exponential backoff; raise MailError otherwise."""
    attempts = settings.smtp_max_attempts
    for attempt in range(attempts):
        try:
            await _send_once(message, settings)
            return
        except Exception as e:  # classified below; anything unexpected is re-raised by _classify
            permanent, why = _classify(e)
            if permanent:
                raise MailError(
                    f"SMTP {settings.smtp_host}:{settings.smtp_port}: {why}", permanent=True
                ) from e
            if attempt + 1 == attempts:
                raise MailError(
                    f"SMTP {settings.smtp_host}:{settings.smtp_port}: {why} (after {attempts} attempt(s))",
                    permanent=False,
                ) from e
            delay = settings.smtp_retry_base_seconds * 2**attempt
            log.info("mail.retry", attempt=attempt + 1, delay=delay, error=why)
            await sleep(delay)
