"""What a failed SMTP send means to the consumer runtime, translated at this boundary:

* a session that cannot be secured as required (STARTTLS not offered, a certificate
  refused) → :class:`PermanentError`: a deployment fault, not a passing one;
* a 4xx reply (including all recipients refused with 4xx), a refused or lost connection, a
  timeout, any other SMTP error → :class:`TransientError` (retried with backoff);
* a 5xx reply, or no SMTPUTF8 on the server for an internationalised address →
  :class:`PermanentError` (dead-lettered at once).
"""

from __future__ import annotations

import aiosmtplib

from services.email.smtp_tls import TlsRefused, certificate_error
from shared.errors import HandlerError, PermanentError, TransientError

# OSError covers refused and lost connections and TimeoutError (= asyncio.TimeoutError).
SEND_ERRORS: tuple[type[BaseException], ...] = (aiosmtplib.SMTPException, OSError)


def _is_transient_code(code: int) -> bool:
    return 400 <= code < 500


def translate_smtp_error(exc: BaseException, server: str) -> HandlerError:
    """The runtime's view of a failed send to ``server`` (host:port)."""
    if isinstance(exc, TlsRefused):
        return PermanentError(f"SMTP {server}: {exc}")
    if (refused := certificate_error(exc)) is not None:
        return PermanentError(f"SMTP {server}: TLS certificate refused: {refused.verify_message}")
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
