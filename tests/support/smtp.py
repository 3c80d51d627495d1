"""A real SMTP server for tests (aiosmtpd), recording what it receives and answering with a
chosen error when told to, or ending sessions the way real servers do (an idle timeout, a
limit of messages per connection)."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.processes import free_port


class SmtpRecorder:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self._messages: list[EmailMessage] = []
        self.port = 0
        # e.g. "451 4.3.0 try again later" or "550 5.1.1 no such user"; None accepts.
        self.answer: str | None = None
        self.refused = 0
        # Connections that said EHLO, with the name each gave, and QUITs received.
        self.sessions = 0
        self.ehlo_names: list[str] = []
        self.quits = 0
        # After this many messages a session's next MAIL is answered 421 and the connection
        # closed, as a server with a per-connection limit does; None: no limit.
        self.messages_per_session: int | None = None
        # Seconds the server takes to answer DATA: a slow relay.
        self.data_delay = 0.0
        # Recipients answered "550 5.1.1 no such user" at RCPT, as a real server refuses
        # an address it does not know.
        self.refused_recipients: set[str] = set()

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.sessions += 1
        self.ehlo_names.append(hostname)
        session.host_name = hostname  # what aiosmtpd does when there is no hook
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        session.mails = getattr(session, "mails", 0) + 1
        if self.messages_per_session is not None and session.mails > self.messages_per_session:
            # Closed once the reply is written (a transport flushes before it closes).
            asyncio.get_running_loop().call_soon(server.transport.close)
            return "421 4.7.0 too many messages on this connection, closing"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.refused_recipients:
            return f"550 5.1.1 <{address}>: no such user here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        self.quits += 1
        return "221 Bye"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if self.answer is not None:
            self.refused += 1
            return self.answer
        self.envelopes.append(envelope)
        self._messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 OK"

    @property
    def messages(self) -> list[EmailMessage]:
        # Parsed once on arrival, and cheap to read: aiosmtpd evaluates every property of its
        # handler for each new SMTP session, so parsing here made each session slower than
        # the last (minutes for a few hundred emails).
        return list(self._messages)


@asynccontextmanager
async def smtp_server(*, idle_timeout: float = 300) -> AsyncIterator[SmtpRecorder]:
    """``idle_timeout``: seconds after which the server closes a silent connection."""
    recorder = SmtpRecorder()
    recorder.port = free_port()
    controller = Controller(
        recorder, hostname="127.0.0.1", port=recorder.port, timeout=idle_timeout
    )
    controller.start()
    try:
        yield recorder
    finally:
        controller.stop()
