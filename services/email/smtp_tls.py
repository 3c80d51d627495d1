"""TLS for the SMTP connections: which mode, which certificates, and never a password in clear.

Modes (``SMTP_TLS``):

* ``opportunistic`` (default): STARTTLS when the server offers it, plain when it does not;
* ``starttls``: STARTTLS required (submission, port 587);
* ``implicit``: TLS from the first byte (SMTPS, port 465);
* ``off``: never TLS (a local mail catcher).

Certificates are always verified (the host name included) against the system's trust store,
or against ``SMTP_TLS_CA_FILE`` when set. With credentials, TLS is required whatever the mode
says: AUTH is only ever sent over TLS (``off`` with credentials is refused at start).

A session that cannot be secured as required (STARTTLS not offered, a certificate refused)
raises :class:`TlsRefused`, which :func:`services.email.smtp_errors.translate_smtp_error` makes a
permanent error: a server's TLS set-up does not change between retries seconds apart; it is
a deployment fault to fix, after which the dead letters are replayed.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal

import aiosmtplib

from shared.errors import ConfigurationError

SmtpTls = Literal["opportunistic", "starttls", "implicit", "off"]
IMPLICIT_TLS_PORT = 465


class TlsRefused(aiosmtplib.SMTPException):
    """The session could not be secured as required; nothing was sent."""


def tls_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """A client context that verifies the server's certificate and host name (against
    ``ca_file`` when given, else the system's trust store); ConfigurationError when the
    file holds no usable certificate."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigurationError(
            f"SMTP_TLS_CA_FILE={ca_file} is not a usable PEM file: {exc}"
        ) from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def uses_tls(conn: aiosmtplib.SMTP) -> bool:
    return conn.get_transport_info("sslcontext") is not None


async def secure(conn: aiosmtplib.SMTP, mode: SmtpTls, *, needs_tls: bool) -> None:
    """Upgrade a connected session as ``mode`` says; ``needs_tls`` (credentials are about
    to be sent) makes TLS required. Raises TlsRefused when it cannot be had."""
    if mode in ("opportunistic", "starttls") and not uses_tls(conn):
        try:
            await conn.ehlo()
        except aiosmtplib.SMTPHeloError:
            await conn.helo()  # a server without ESMTP: no extensions, so no STARTTLS
        if conn.supports_extension("starttls"):
            await conn.starttls()
        elif mode == "starttls":
            raise TlsRefused("SMTP_TLS=starttls but the server does not offer STARTTLS")
    if needs_tls and not uses_tls(conn):
        raise TlsRefused(
            "refusing to send SMTP credentials over a connection without TLS (the server "
            "offers no STARTTLS; use SMTP_TLS=implicit or a server that offers it)"
        )


def certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind ``exc``, if that is what it is
    (aiosmtplib wraps it in SMTPConnectError for implicit TLS)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
