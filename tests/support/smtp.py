"""A real SMTP server for tests (aiosmtpd), recording what it receives and answering with a
chosen error when told to."""

from __future__ import annotations

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

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
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
async def smtp_server() -> AsyncIterator[SmtpRecorder]:
    recorder = SmtpRecorder()
    recorder.port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=recorder.port)
    controller.start()
    try:
        yield recorder
    finally:
        controller.stop()
