"""Sending over SMTP with aiosmtplib, and what its errors mean to the consumer runtime.

One SMTP session per email: a message in hand never waits for another's session, and
there is no idle connection to keep alive. aiosmtplib's ``timeout`` bounds each step of the
session (connect, every command and reply).

Errors are translated at this boundary:

* a 4xx reply (including all recipients refused with 4xx), a refused or lost connection, a
  timeout, any other SMTP error → :class:`TransientError` (retried with backoff);
* a 5xx reply, or no SMTPUTF8 on the server for an internationalised address →
  :class:`PermanentError` (dead-lettered at once).
"""

from __future__ import annotations

import logging
from email.message import EmailMessage

import aiosmtplib

from services.email.settings import EmailSettings
from shared.errors import HandlerError, PermanentError, TransientError

log = logging.getLogger(__name__)

# OSError covers refused and lost connections and TimeoutError (= asyncio.TimeoutError).
SEND_ERRORS: tuple[type[BaseException], ...] = (aiosmtplib.SMTPException, OSError)


def _is_transient_code(code: int) -> bool:
    return 400 <= code < 500


def translate_smtp_error(exc: BaseException, server: str) -> HandlerError:
    """The runtime's view of a failed send to ``server`` (host:port)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        replies = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        message = f"SMTP {server} refused all recipients: {replies}"
        if all(_is_transient_code(r.code) for r in exc.recipients):
            return TransientError(message)
        return PermanentError(message)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        message = f"SMTP {server} answered {exc.code} {exc.message}"
        if 500 <= exc.code < 600:
            return PermanentError(message)
        return TransientError(message)  # 4xx, or a reply code that is not an SMTP one
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return PermanentError(f"SMTP {server} does not support what is needed: {exc}")
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, TimeoutError):  # also asyncio's and aiosmtplib's timeouts
        return TransientError(f"SMTP {server} timed out: {detail}")
    if isinstance(exc, OSError):  # refused, reset, lost (SMTPConnectError, ...Disconnected)
        return TransientError(f"SMTP {server} unreachable: {detail}")
    return TransientError(f"SMTP {server} failed: {detail}")


class SmtpSender:
    """Hands an email to one SMTP server; built once per process, in bootstrap."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout

    @classmethod
    def from_settings(cls, settings: EmailSettings) -> SmtpSender:
        password = settings.smtp_password
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            username=settings.smtp_username,
            password=password.get_secret_value() if password is not None else None,
            starttls=settings.smtp_starttls,
            timeout=settings.smtp_timeout,
        )

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"

    def __repr__(self) -> str:  # never the password
        return f"SmtpSender({self.server}, starttls={self._starttls})"

    async def send(self, message: EmailMessage) -> None:
        """Send ``message`` to the addresses in its headers (envelope from its From).

        Raises TransientError or PermanentError (chained to the SMTP error)."""
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self._username,
                password=self._password,
                start_tls=self._starttls,
                timeout=self._timeout,
            )
        except SEND_ERRORS as exc:
            raise translate_smtp_error(exc, self.server) from exc
        log.info("sent %s via %s", message["Message-ID"], self.server)
