"""SmtpSender against real SMTP servers (aiosmtpd, and a TCP server that never answers):
what is delivered, and which failures are transient or permanent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller

from services.email.messages import confirmation_email
from services.email.smtp import SmtpSender
from shared.errors import PermanentError, TransientError
from tests.support import events
from tests.support.processes import free_port
from tests.support.smtp import SmtpRecorder

FROM = "Hotel Booking <bookings@hotel.example>"


class Recorder(SmtpRecorder):
    """The project's test SMTP server, able to answer RCPT with an error too."""

    def __init__(self) -> None:
        super().__init__()
        self.rcpt_answer: str | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.rcpt_answer is not None:
            self.refused += 1
            return self.rcpt_answer
        envelope.rcpt_tos.append(address)
        return "250 OK"


@asynccontextmanager
async def recorder(*, smtputf8: bool = False) -> AsyncIterator[Recorder]:
    smtp = Recorder()
    smtp.port = free_port()
    controller = Controller(smtp, hostname="127.0.0.1", port=smtp.port, enable_SMTPUTF8=smtputf8)
    controller.start()
    try:
        yield smtp
    finally:
        controller.stop()


def email(guest_name: str = "Ada Lovelace", guest_email: str = "ada@example.com") -> Any:
    event = events.confirmed(
        check_in=date(2027, 3, 1),
        check_out=date(2027, 3, 3),
        guest_name=guest_name,
        guest_email=guest_email,
    )
    return confirmation_email(event, email_from=FROM).message


async def test_an_email_reaches_the_server_with_its_envelope_and_a_unicode_guest_name() -> None:
    async with recorder() as smtp:
        await SmtpSender("127.0.0.1", smtp.port).send(email(guest_name="Zoë 李雷"))
    [envelope], [received] = smtp.envelopes, smtp.messages
    assert envelope.mail_from == "bookings@hotel.example"
    assert envelope.rcpt_tos == ["ada@example.com"]
    assert received["To"].addresses[0].display_name == "Zoë 李雷"
    assert envelope.content.isascii()  # 7-bit on the wire: no 8BITMIME needed


@pytest.mark.parametrize(
    ("stage", "answer", "error"),
    [
        ("RCPT", "451 4.3.0 try later", TransientError),
        ("RCPT", "550 5.1.1 no such user", PermanentError),
        ("DATA", "451 4.3.0 try later", TransientError),
        ("DATA", "554 5.7.1 rejected as spam", PermanentError),
    ],
)
async def test_4xx_replies_are_transient_and_5xx_replies_permanent(
    stage: str, answer: str, error: type[Exception]
) -> None:
    async with recorder() as smtp:
        if stage == "RCPT":
            smtp.rcpt_answer = answer
        else:
            smtp.answer = answer
        with pytest.raises(error) as raised:
            await SmtpSender("127.0.0.1", smtp.port).send(email())
    assert answer in str(raised.value)
    assert isinstance(raised.value.__cause__, aiosmtplib.SMTPException)
    assert smtp.refused == 1
    assert smtp.envelopes == []


async def test_an_smtp_server_that_is_not_listening_is_transient() -> None:
    port = free_port()
    with pytest.raises(TransientError, match=f"127.0.0.1:{port} unreachable") as raised:
        await SmtpSender("127.0.0.1", port, timeout=2).send(email())
    assert isinstance(raised.value.__cause__, OSError)


async def test_an_smtp_server_that_never_answers_times_out_as_transient() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept, never greet, until the client gives up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TransientError, match="timed out"):
            await SmtpSender("127.0.0.1", port, timeout=0.3).send(email())
    finally:
        server.close()
        await server.wait_closed()


async def test_starttls_required_by_settings_but_not_offered_is_retried_not_sent_in_clear() -> None:
    async with recorder() as smtp:
        with pytest.raises(TransientError, match="STARTTLS"):
            await SmtpSender("127.0.0.1", smtp.port, starttls=True).send(email())
    assert smtp.envelopes == []


async def test_an_address_that_needs_smtputf8_is_sent_with_it_and_is_permanent_without() -> None:
    async with recorder(smtputf8=True) as smtp:
        await SmtpSender("127.0.0.1", smtp.port).send(email(guest_email="zoë@example.com"))
    [envelope] = smtp.envelopes
    assert envelope.rcpt_tos == ["zoë@example.com"]
    assert "SMTPUTF8" in envelope.mail_options
    async with recorder(smtputf8=False) as smtp:
        with pytest.raises(PermanentError, match="SMTPUTF8"):
            await SmtpSender("127.0.0.1", smtp.port).send(email(guest_email="zoë@example.com"))
    assert smtp.envelopes == []


async def test_an_internationalised_domain_is_sent_in_its_ascii_form() -> None:
    async with recorder() as smtp:
        await SmtpSender("127.0.0.1", smtp.port).send(email(guest_email="ada@bücher.de"))
    [envelope], [received] = smtp.envelopes, smtp.messages
    assert envelope.rcpt_tos == ["ada@xn--bcher-kva.de"]
    assert received["To"].addresses[0].addr_spec == "ada@xn--bcher-kva.de"
