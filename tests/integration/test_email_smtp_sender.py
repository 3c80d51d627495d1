"""SmtpSender against real SMTP servers (aiosmtpd, and a TCP server that never answers):
what is delivered, which failures are transient or permanent, and how its pooled
connections are reused and replaced without losing or duplicating an email."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller

from services.email import smtp as smtp_module
from services.email.composing import Outgoing, confirmation_email
from services.email.smtp import SmtpSender
from shared.errors import PermanentError, TransientError
from tests.support import events
from tests.support.processes import free_port
from tests.support.smtp import SmtpRecorder

FROM = "Hotel Booking <bookings@hotel.example>"


class Recorder(SmtpRecorder):
    """The project's test SMTP server, able to answer RCPT with an error too, and to drop
    a connection without a reply: at the next MAIL, or just after taking a message."""

    def __init__(self) -> None:
        super().__init__()
        self.rcpt_answer: str | None = None
        self.drop_at_next_mail = False
        self.drop_after_data = False

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.drop_at_next_mail:
            self.drop_at_next_mail = False
            server.transport.abort()  # as a server that timed the session out just now
            return "250 OK"  # never written: the connection is gone
        return await super().handle_MAIL(server, session, envelope, address, options)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        status = await super().handle_DATA(server, session, envelope)
        if self.drop_after_data:
            server.transport.abort()  # the message is taken, the reply is lost
        return status

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.rcpt_answer is not None:
            self.refused += 1
            return self.rcpt_answer
        envelope.rcpt_tos.append(address)
        return "250 OK"


@asynccontextmanager
async def recorder(*, smtputf8: bool = False, idle_timeout: float = 300) -> AsyncIterator[Recorder]:
    smtp = Recorder()
    smtp.port = free_port()
    controller = Controller(
        smtp,
        hostname="127.0.0.1",
        port=smtp.port,
        enable_SMTPUTF8=smtputf8,
        timeout=idle_timeout,
    )
    controller.start()
    try:
        yield smtp
    finally:
        controller.stop()


@asynccontextmanager
async def sending(port: int, **options: Any) -> AsyncIterator[SmtpSender]:
    """A sender to 127.0.0.1:``port``, closed afterwards (its pool QUITs)."""
    sender = SmtpSender("127.0.0.1", port, **options)
    try:
        yield sender
    finally:
        await sender.close()


def email(guest_name: str = "Ada Lovelace", guest_email: str = "ada@example.com") -> Outgoing:
    event = events.confirmed(
        check_in=date(2027, 3, 1),
        check_out=date(2027, 3, 3),
        guest_name=guest_name,
        guest_email=guest_email,
    )
    return confirmation_email(event, email_from=FROM)


async def test_an_email_reaches_the_server_with_its_envelope_and_a_unicode_guest_name() -> None:
    async with recorder() as smtp, sending(smtp.port) as sender:
        await sender.send(email(guest_name="Zoë 李雷"))
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
            async with sending(smtp.port) as sender:
                await sender.send(email())
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


async def test_an_address_that_needs_smtputf8_is_sent_with_it_and_is_permanent_without() -> None:
    async with recorder(smtputf8=True) as smtp, sending(smtp.port) as sender:
        await sender.send(email(guest_email="zoë@example.com"))
    [envelope] = smtp.envelopes
    assert envelope.rcpt_tos == ["zoë@example.com"]
    assert "SMTPUTF8" in envelope.mail_options
    async with recorder(smtputf8=False) as smtp, sending(smtp.port) as sender:
        with pytest.raises(PermanentError, match="SMTPUTF8"):
            await sender.send(email(guest_email="zoë@example.com"))
    assert smtp.envelopes == []


async def test_an_internationalised_domain_is_sent_in_its_ascii_form() -> None:
    async with recorder() as smtp, sending(smtp.port) as sender:
        await sender.send(email(guest_email="ada@bücher.de"))
    [envelope], [received] = smtp.envelopes, smtp.messages
    assert envelope.rcpt_tos == ["ada@xn--bcher-kva.de"]
    assert received["To"].addresses[0].addr_spec == "ada@xn--bcher-kva.de"


async def test_sequential_emails_share_one_connection_which_close_quits() -> None:
    async with recorder() as smtp:
        async with sending(smtp.port, local_hostname="client.hotel.example") as sender:
            for _ in range(5):
                await sender.send(email())
        assert smtp.quits == 1
    assert len(smtp.envelopes) == 5
    assert smtp.sessions == 1
    assert smtp.ehlo_names == ["client.hotel.example"]


async def test_without_a_configured_name_ehlo_gives_the_fqdn_looked_up_once() -> None:
    async with recorder() as smtp, sending(smtp.port, pool_size=2) as sender:
        await asyncio.gather(*(sender.send(email()) for _ in range(2)))
    assert smtp.ehlo_names == [socket.getfqdn()] * 2


async def test_concurrent_emails_use_at_most_pool_size_connections() -> None:
    messages = [email() for _ in range(12)]
    async with recorder() as smtp, sending(smtp.port, pool_size=3) as sender:
        await asyncio.gather(*(sender.send(message) for message in messages))
    assert sorted(m["Message-ID"] for m in smtp.messages) == sorted(m.message_id for m in messages)
    assert 1 <= smtp.sessions <= 3


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    async with recorder(idle_timeout=0.2) as smtp, sending(smtp.port) as sender:
        await sender.send(email())
        await asyncio.sleep(0.5)  # the server times the session out
        await sender.send(email())
    assert len(smtp.envelopes) == 2
    assert smtp.sessions == 2


@pytest.mark.parametrize("drop", ["421 at MAIL", "closed at MAIL"])
async def test_a_pooled_connection_dropped_before_data_is_replaced_and_the_email_sent_once(
    drop: str, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = email(), email()
    async with recorder() as smtp, sending(smtp.port) as sender:
        await sender.send(first)
        if drop == "421 at MAIL":
            smtp.messages_per_session = 1
        else:
            smtp.drop_at_next_mail = True
        with caplog.at_level(logging.INFO, logger="services.email.smtp"):
            await sender.send(second)
    assert [m["Message-ID"] for m in smtp.messages] == [first.message_id, second.message_id]
    assert smtp.sessions == 2
    assert "dropped a pooled connection before DATA" in caplog.text  # the race, not idle


async def test_a_connection_lost_after_data_is_not_retried_so_never_duplicates() -> None:
    async with recorder() as smtp, sending(smtp.port) as sender:
        await sender.send(email())  # the second email goes over a pooled connection
        smtp.drop_after_data = True
        second = email()
        with pytest.raises(TransientError, match="unreachable") as raised:
            await sender.send(second)
        assert isinstance(raised.value.__cause__, aiosmtplib.SMTPServerDisconnected)
        smtp.drop_after_data = False
        await sender.send(email())  # and the next one goes over a new connection
    assert [m["Message-ID"] for m in smtp.messages].count(second.message_id) == 1
    assert len(smtp.envelopes) == 3
    assert smtp.sessions == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [("451 4.3.0 try later", TransientError), ("554 5.7.1 rejected as spam", PermanentError)],
)
async def test_replies_on_a_pooled_connection_are_translated_and_never_retried(
    answer: str, error: type[Exception]
) -> None:
    async with recorder() as smtp, sending(smtp.port) as sender:
        await sender.send(email())
        smtp.answer = answer
        with pytest.raises(error, match=answer):
            await sender.send(email())
        assert smtp.refused == 1
        smtp.answer = None
        await sender.send(email())  # the failed connection was dropped: a new one
    assert len(smtp.envelopes) == 2
    assert smtp.sessions == 2


async def test_a_connection_idle_for_too_long_is_replaced_not_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(smtp_module, "MAX_IDLE_SECONDS", 0.0)
    async with recorder() as smtp, sending(smtp.port) as sender:
        for _ in range(2):
            await sender.send(email())
    assert len(smtp.envelopes) == 2
    assert smtp.sessions == 2
