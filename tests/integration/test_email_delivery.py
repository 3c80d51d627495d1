"""The email service end to end through its consumer: real RabbitMQ, PostgreSQL and a real
SMTP server (aiosmtpd) on a free port."""

from __future__ import annotations

import asyncio
import io
import logging
from email.message import EmailMessage

import pytest
from pypdf import PdfReader

from shared.events import BookingCancelled
from shared.messaging.envelope import event_message
from shared.messaging.topology import EVENTS_EXCHANGE, consumer_topology
from shared.voucher_code import voucher_code
from tests.support.amqp import publish_raw, queue_depth, take
from tests.support.events import booking_facts, confirmed
from tests.support.infra import TestEnv
from tests.support.processes import free_port
from tests.support.smtp import smtp_server
from tests.support.stack import effects, equals, fetchval, running_consumer, wait_until

EMAIL = consumer_topology("email")


def text_of(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    assert part.get_content_type() == f"text/{subtype}"
    return str(part.get_content())


async def test_a_confirmation_email_has_text_html_and_a_voucher_pdf_with_the_code(
    env: TestEnv,
) -> None:
    event = confirmed(guest_name="Ada <b>Lovelace</b>")
    code = voucher_code(event.booking_id)
    async with smtp_server() as smtp, running_consumer("email", env, smtp_port=smtp.port):
        await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(event))
        await wait_until(lambda: len(smtp.envelopes) == 1, what="the email")
        await wait_until(lambda: equals(effects(env, "email"), 1), what="the record")
    [envelope], [mail] = smtp.envelopes, smtp.messages
    assert envelope.rcpt_tos == ["ada@example.com"]
    assert envelope.mail_from == "bookings@hotel.example"
    assert mail["Message-ID"] == f"<{event.event_id}@hotel-booking>"
    assert code in mail["Subject"]
    assert str(event.booking_id) not in mail["Subject"]
    assert mail.get_content_type() == "multipart/mixed"
    text, html = text_of(mail, "plain"), text_of(mail, "html")
    assert code in text
    assert str(event.booking_id) in text
    assert "Ada &lt;b&gt;Lovelace&lt;/b&gt;" in html
    assert "<b>Lovelace" not in html
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == f"voucher-{code}.pdf"
    pdf = PdfReader(io.BytesIO(attachment.get_content()))
    pdf_text = "".join(page.extract_text() for page in pdf.pages)
    assert code in pdf_text
    assert str(event.booking_id) in pdf_text
    row = await fetchval(
        env, "SELECT row_to_json(e)::text FROM email.emails e WHERE event_id = $1", event.event_id
    )
    assert f'"voucher_code":"{code}"' in row
    assert f'"message_id":"<{event.event_id}@hotel-booking>"' in row
    assert '"kind":"confirmation"' in row


async def test_a_booking_cancelled_delivered_twice_sends_one_cancellation_email(
    env: TestEnv,
) -> None:
    event = BookingCancelled.model_validate(booking_facts())
    async with (
        smtp_server() as smtp,
        running_consumer("email", env, smtp_port=smtp.port) as process,
    ):
        for _ in range(2):
            await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(event))
        await wait_until(lambda: process.consumer.stats["duplicates"] == 1, what="duplicate")
    [mail] = smtp.messages
    assert "cancelled" in mail["Subject"]
    assert mail["Message-ID"] == f"<{event.event_id}@hotel-booking>"
    assert "has been cancelled" in text_of(mail, "plain")
    assert "has been cancelled" in text_of(mail, "html")
    assert list(mail.iter_attachments()) == []
    assert await effects(env, "email") == 1
    assert await queue_depth(env.amqp_url(), EMAIL.dead_letter_queue) == 0


async def test_a_451_reply_or_a_server_not_listening_is_retried_then_dead_lettered_as_exhausted(
    env: TestEnv,
) -> None:
    busy, unreachable = confirmed(), confirmed()
    async with smtp_server() as smtp:
        smtp.answer = "451 4.3.0 try later"
        async with running_consumer("email", env, smtp_port=smtp.port, max_attempts=3) as process:
            await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(busy))
            [busy_dead] = await take(env.amqp_url(), EMAIL.dead_letter_queue, 1)
    assert smtp.refused == 3
    assert process.consumer.stats["retried"] == 2
    port = free_port()  # nothing listens there
    async with running_consumer("email", env, smtp_port=port, max_attempts=3) as process:
        await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(unreachable))
        [unreachable_dead] = await take(env.amqp_url(), EMAIL.dead_letter_queue, 1)
    assert process.consumer.stats["retried"] == 2
    for dead, event in ((busy_dead, busy), (unreachable_dead, unreachable)):
        assert dead.message_id == str(event.event_id)
        assert dead.headers["x-reason"] == "retries-exhausted"
        assert dead.headers["x-attempts"] == 3
        assert dead.headers["x-exception-type"] == "TransientError"
    assert "451 4.3.0 try later" in str(busy_dead.headers["x-exception-message"])
    assert f"127.0.0.1:{port} unreachable" in str(unreachable_dead.headers["x-exception-message"])
    assert await effects(env, "email") == 0


async def test_an_smtp_server_answering_550_dead_letters_the_email_after_one_attempt(
    env: TestEnv,
) -> None:
    async with smtp_server() as smtp:
        smtp.answer = "550 5.1.1 no such user"
        async with running_consumer("email", env, smtp_port=smtp.port, max_attempts=3) as process:
            await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(confirmed()))
            [dead] = await take(env.amqp_url(), EMAIL.dead_letter_queue, 1)
    assert dead.headers["x-reason"] == "permanent-failure"
    assert dead.headers["x-attempts"] == 1
    assert dead.headers["x-exception-type"] == "PermanentError"
    assert "550 5.1.1 no such user" in str(dead.headers["x-exception-message"])
    assert smtp.refused == 1
    assert process.consumer.stats["retried"] == 0
    assert await effects(env, "email") == 0


async def test_a_guest_name_or_email_with_header_injection_is_dead_lettered_and_nothing_is_sent(
    env: TestEnv,
) -> None:
    injected = [
        confirmed(guest_name="Ada\r\nBcc: victim@example.com"),
        confirmed(guest_email="ada@example.com\r\nBcc: victim@example.com"),
    ]
    async with smtp_server() as smtp, running_consumer("email", env, smtp_port=smtp.port):
        for event in injected:
            # Straight onto the email queue, as an event that bypassed the API would arrive.
            await publish_raw(env.amqp_url(), "", event_message(event), routing_key=EMAIL.queue)
        dead = await take(env.amqp_url(), EMAIL.dead_letter_queue, 2)
        # A good event after them is sent: the server was there and listening.
        await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(confirmed()))
        await wait_until(lambda: len(smtp.envelopes) == 1, what="the good email")
    assert sorted(m.message_id or "" for m in dead) == sorted(str(e.event_id) for e in injected)
    for message in dead:
        assert message.headers["x-reason"] == "permanent-failure"
        assert message.headers["x-attempts"] == 1
        assert "header injection" in str(message.headers["x-exception-message"])
    assert smtp.refused == 0
    [envelope] = smtp.envelopes
    assert envelope.rcpt_tos == ["ada@example.com"]
    assert b"victim" not in envelope.content
    assert await effects(env, "email") == 1


async def test_emails_one_after_another_go_over_one_smtp_connection_quit_at_shutdown(
    env: TestEnv,
) -> None:
    sent = [confirmed() for _ in range(5)]
    async with smtp_server() as smtp:
        async with running_consumer("email", env, smtp_port=smtp.port):
            for count, event in enumerate(sent, start=1):
                await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(event))
                await wait_until(lambda n=count: len(smtp.envelopes) == n, what="the email")
        assert smtp.quits == 1  # the pool was closed with the process
    assert smtp.sessions == 1
    assert [m["Message-ID"] for m in smtp.messages] == [
        f"<{e.event_id}@hotel-booking>" for e in sent
    ]


async def test_an_smtp_server_dropping_idle_and_busy_connections_loses_and_duplicates_nothing(
    env: TestEnv, caplog: pytest.LogCaptureFixture
) -> None:
    bursts = [[confirmed() for _ in range(5)] for _ in range(2)]
    async with smtp_server(idle_timeout=0.3) as smtp:
        smtp.messages_per_session = 2  # then 421 and the connection closed, at the next MAIL
        async with running_consumer("email", env, smtp_port=smtp.port, smtp_pool_size=2) as process:
            with caplog.at_level(logging.INFO, logger="services.email.smtp"):
                for sent, burst in enumerate(bursts, start=1):
                    for event in burst:
                        await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(event))
                    await wait_until(lambda n=5 * sent: len(smtp.envelopes) == n, what="emails")
                    await asyncio.sleep(0.6)  # every pooled connection times out on the server
            await wait_until(lambda: equals(effects(env, "email"), 10), what="the records")
    received = sorted(str(m["Message-ID"]) for m in smtp.messages)
    assert received == sorted(f"<{e.event_id}@hotel-booking>" for b in bursts for e in b)
    assert "dropped a pooled connection before DATA" in caplog.text  # the 421s were met
    assert process.consumer.stats["retried"] == 0  # the sender replaced them: no backoff
    assert await queue_depth(env.amqp_url(), EMAIL.dead_letter_queue) == 0
