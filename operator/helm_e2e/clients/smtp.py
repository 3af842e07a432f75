"""Sending the report over SMTP with aiosmtplib: TLS modes, optional auth, timeouts; one attempt per call.

`send_email` never retries and never sleeps: the single retry layer is the run's e-mail outbox in the
controller (EmailSent=Retrying with the next attempt time). Transient failures (connection refused or
lost, timeouts, 4xx answers) raise MailError(permanent=False); permanent ones (5xx answers, refused
recipients, failed certificate verification, a server without STARTTLS or AUTH, a message that cannot
be serialized, e.g. a header with CR/LF) raise MailError(permanent=True). Errors never carry the
password, an address or a header value.
"""

from __future__ import annotations

import ssl
from email.errors import MessageError
from email.message import EmailMessage

import structlog

from helm_e2e.errors import MailError
from helm_e2e.settings import Settings, SmtpTls

log = structlog.get_logger(__name__)


def build_tls_context(settings: Settings) -> ssl.SSLContext | None:
    """None for plain SMTP; otherwise a verifying context (smtp_ca_file, or the system roots)."""
    if settings.smtp_tls == SmtpTls.NONE:
        return None
    try:
        return ssl.create_default_context(cafile=settings.smtp_ca_file or None)
    except (OSError, ssl.SSLError) as e:
        raise MailError(
            f"SMTP CA file {settings.smtp_ca_file!r} cannot be loaded: {type(e).__name__}", permanent=True
        ) from e


async def _send_once(message: EmailMessage, settings: Settings, tls_context: ssl.SSLContext | None) -> int:
    """One delivery attempt; returns how many recipients the server refused while accepting the rest."""
    import aiosmtplib  # the mail stack is imported when a report is sent, not at the operator's start

    password = settings.smtp_password.get_secret_value() if settings.smtp_username else ""
    refused, _ = await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username or None,
        password=password or None,
        use_tls=settings.smtp_tls == SmtpTls.TLS,
        start_tls=settings.smtp_tls == SmtpTls.STARTTLS,
        tls_context=tls_context,
        timeout=settings.smtp_timeout_seconds,
    )
    return len(refused)


def _cause_chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def classify_smtp_error(error: BaseException) -> tuple[bool, str]:
    """(permanent, what happened): 5xx, refused recipients and configuration errors are permanent."""
    import aiosmtplib

    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = sorted({r.code for r in error.recipients})
        return any(c >= 500 for c in codes), f"all {len(error.recipients)} recipient(s) refused {codes}"
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return error.code >= 500, f"server answered {error.code} {error.message.strip()[:200]}"
    if isinstance(error, aiosmtplib.SMTPNotSupported):
        return True, f"server does not support what SMTP_TLS or SMTP_USERNAME ask for: {str(error)[:200]}"
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in _cause_chain(error)):
        return True, "TLS certificate verification failed (set SMTP_CA_FILE to the server's CA bundle)"
    return False, f"{type(error).__name__}: {str(error)[:200] or 'no detail'}"


async def send_email(message: EmailMessage, *, settings: Settings) -> None:
    """One delivery attempt; MailError(permanent=...) when it fails."""
    where = f"SMTP {settings.smtp_host}:{settings.smtp_port}"
    tls_context = build_tls_context(settings)
    import aiosmtplib

    try:
        refused = await _send_once(message, settings, tls_context)
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as e:
        permanent, why = classify_smtp_error(e)
        raise MailError(f"{where}: {why}", permanent=permanent) from e
    except (ValueError, TypeError, MessageError, UnicodeError) as e:  # e.g. CR/LF or bad address in a header
        raise MailError(
            f"{where}: the message cannot be sent as built ({type(e).__name__})", permanent=True
        ) from e
    if refused:  # the others have it: sending again would duplicate it for them
        log.warning("mail.recipients_refused", host=settings.smtp_host, refused=refused)
    log.debug("mail.delivered", host=settings.smtp_host)
