"""Sending over SMTP with aiosmtplib.

Connections are pooled: up to ``pool_size`` sessions, each carrying one email at a time and
kept open between emails, so an email costs MAIL, RCPT and DATA rather than a connect,
EHLO and QUIT as well. A connection that fails is closed, never reused. A pooled connection
the server has dropped meanwhile (idle timeout, message limit: a lost connection, a timeout
or 421) is replaced, and the email sent again on a new connection, once, and only when the
failure came before DATA: until then the server holds nothing of the email, after it the
server may have taken it, and a second send would be a duplicate. aiosmtplib's ``timeout``
bounds each step of a session (connect, every command and reply). TLS (STARTTLS when
offered by default, required, or implicit) and the rule that credentials only ever travel
over TLS live in :mod:`services.email.smtp_tls`.

What its errors mean (transient or permanent): :mod:`services.email.smtp_errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosmtplib

from services.email.settings import EmailSettings
from services.email.smtp_errors import SEND_ERRORS, translate_smtp_error
from services.email.smtp_tls import SmtpTls, secure, tls_context

if TYPE_CHECKING:
    from services.email.composing import Outgoing

log = logging.getLogger(__name__)

# An idle connection older than this is closed instead of reused: servers drop idle
# sessions (after a minute or more, typically), and a firewall may do so silently, which
# only a timeout would reveal. Under load connections never sit idle this long.
MAX_IDLE_SECONDS = 30.0
# QUIT at shutdown is a courtesy: it may not hold up the process.
QUIT_TIMEOUT = 2.0
_SERVICE_CLOSING = 421  # "closing transmission channel"


class _Connection(aiosmtplib.SMTP):
    """One pooled SMTP session. It notes when an email's DATA begins (``sendmail`` calls
    ``data`` after MAIL and RCPT), which is what decides whether a failed send may be
    repeated on another connection."""

    data_started = False
    idle_since = 0.0

    async def data(self, message: str | bytes, /, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        self.data_started = True
        return await super().data(message, **kwargs)

    async def mail_options(self, message: Outgoing) -> list[str]:
        """MAIL's options, as aiosmtplib's ``send_message`` would give them: the message
        itself is 7-bit (quoted-printable, base64) unless an address needs SMTPUTF8."""
        if self.is_ehlo_or_helo_needed:  # the extensions are known after EHLO
            try:
                await self.ehlo()
            except aiosmtplib.SMTPHeloError:
                await self.helo()
        options = []
        if message.smtputf8:
            if not self.supports_extension("smtputf8"):
                raise aiosmtplib.SMTPNotSupported(
                    "An address containing non-ASCII characters was provided, but SMTPUTF8 "
                    "is not supported by this server"
                )
            options.append("SMTPUTF8")
        if self.supports_extension("8BITMIME"):
            options.append("BODY=8BITMIME")
        return options


def _dropped_before_data(conn: _Connection, exc: BaseException) -> bool:
    """Whether the server ended the session before it could have taken the email."""
    if conn.data_started:
        return False  # the server may hold the email already
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code == _SERVICE_CLOSING  # e.g. too many messages on this session
    return isinstance(exc, OSError)  # lost connection, reset, timeout


class SmtpSlot:
    """The right to send one email now (see :meth:`SmtpSender.slot`)."""

    def __init__(self, sender: SmtpSender) -> None:
        self._sender = sender

    async def send(self, message: Outgoing) -> None:
        """As :meth:`SmtpSender.send`, within this slot."""
        sender = self._sender
        try:
            await sender._send(message)
        except SEND_ERRORS as exc:
            raise translate_smtp_error(exc, sender.server) from exc
        log.info("sent %s via %s", message.message_id, sender.server)


class SmtpSender:
    """Hands emails to one SMTP server over a small pool of connections; built once per
    process, in bootstrap, and closed with it."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: SmtpTls = "opportunistic",
        ca_file: Path | None = None,
        timeout: float = 10.0,
        pool_size: int = 4,
        local_hostname: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._username = username
        self._password = password
        self._tls = tls
        # Built once: it reads the CA file (a missing one fails at start, not per email).
        self._tls_context = tls_context(ca_file)
        self._timeout = timeout
        # The name given in EHLO: looked up once, not by aiosmtplib for every connection.
        self._local_hostname = local_hostname
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: list[_Connection] = []  # most recently used last
        self._closed = False

    @classmethod
    def from_settings(cls, settings: EmailSettings) -> SmtpSender:
        password = settings.smtp_password
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            username=settings.smtp_username,
            password=password.get_secret_value() if password is not None else None,
            tls=settings.smtp_tls,
            ca_file=settings.smtp_tls_ca_file,
            timeout=settings.smtp_timeout,
            pool_size=settings.smtp_pool_size,
            local_hostname=settings.smtp_local_hostname,
        )

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"

    def __repr__(self) -> str:  # never the password
        return f"SmtpSender({self.server}, tls={self._tls})"

    async def send(self, message: Outgoing) -> None:
        """Send ``message`` (its bytes, to its envelope's recipient).

        Raises TransientError or PermanentError (chained to the SMTP error)."""
        async with self.slot() as slot:
            await slot.send(message)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[SmtpSlot]:
        """One of the ``pool_size`` sending slots, held until the block ends: the email
        handler takes it before its transaction opens, so no database connection waits for
        an SMTP connection."""
        async with self._slots:
            yield SmtpSlot(self)

    async def close(self) -> None:
        """QUIT the idle connections; one still sending is closed when it comes back."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(self._quit(conn) for conn in idle))

    async def _send(self, message: Outgoing) -> None:
        conn = self._take_idle()
        reused = conn is not None
        if conn is None:
            conn = await self._connect()
        try:
            await self._send_on(conn, message)
        except SEND_ERRORS as exc:
            if not (reused and _dropped_before_data(conn, exc)):
                raise
            log.info(
                "SMTP %s dropped a pooled connection before DATA (%s: %s); sending %s on a "
                "new connection",
                self.server,
                type(exc).__name__,
                exc,
                message.message_id,
            )
            conn = await self._connect()
            await self._send_on(conn, message)
        self._put_idle(conn)

    async def _send_on(self, conn: _Connection, message: Outgoing) -> None:
        conn.data_started = False
        try:
            options = await conn.mail_options(message)
            await conn.sendmail(
                message.sender, [message.recipient], message.data, mail_options=options
            )
        except BaseException:
            # Whatever failed (a reply, the connection, a cancellation mid-command), the
            # session's state is uncertain: never reuse it.
            conn.close()
            raise

    def _take_idle(self) -> _Connection | None:
        # The most recently used first: the least likely to have been dropped meanwhile.
        while self._idle:
            conn = self._idle.pop()
            if conn.is_connected and time.monotonic() - conn.idle_since < MAX_IDLE_SECONDS:
                return conn
            conn.close()  # closed by the server while idle (seen by the loop), or too old
        return None

    def _put_idle(self, conn: _Connection) -> None:
        if self._closed or not conn.is_connected:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        self._idle.append(conn)

    async def _connect(self) -> _Connection:
        if self._local_hostname is None:
            # What aiosmtplib would look up for each connection, once (it may ask the DNS).
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        conn = _Connection(
            hostname=self.host,
            port=self.port,
            use_tls=self._tls == "implicit",
            start_tls=False,  # decided by secure(), which aiosmtplib's options cannot say
            tls_context=self._tls_context,
            timeout=self._timeout,
            local_hostname=self._local_hostname,
        )
        await conn.connect()  # closes itself if it fails
        try:
            await secure(conn, self._tls, needs_tls=self._username is not None)
            if self._username is not None:
                await conn.login(self._username, self._password or "")
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    async def _quit(conn: _Connection) -> None:
        try:
            if conn.is_connected:
                await conn.quit(timeout=QUIT_TIMEOUT)
        except SEND_ERRORS:
            pass  # the server went first, or is slow: closing is enough
        finally:
            conn.close()
