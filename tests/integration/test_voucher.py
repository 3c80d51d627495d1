"""The voucher service through its consumer: real RabbitMQ and PostgreSQL, the real PDF."""

from __future__ import annotations

import base64
import io
import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from pypdf import PdfReader

from shared.events import BookingCancelled, BookingConfirmed
from shared.messaging.envelope import event_message
from shared.messaging.topology import EVENTS_EXCHANGE, consumer_topology, declare_all
from shared.voucher_code import voucher_code
from tests.support.amqp import channel, publish_raw, queue_depth
from tests.support.events import booking_facts
from tests.support.infra import TestEnv
from tests.support.stack import fetchval, running_consumer, wait_until


def facts(booking_id: UUID) -> dict[str, Any]:
    return booking_facts(
        booking_id=booking_id,
        hotel_id=2,
        hotel_name="Harbour Lights",
        room_type="suite",
        check_in=date.today() + timedelta(days=40),
        check_out=date.today() + timedelta(days=43),
        nights=3,
        total_price=Decimal("1050.00"),
        guest_name="Grace Hopper",
        guest_email="grace@example.com",
    )


async def outbox_bodies(env: TestEnv, event_type: str) -> list[dict[str, Any]]:
    raw = await fetchval(
        env,
        "SELECT coalesce(json_agg(body::json), '[]') FROM voucher.outbox WHERE event_type = $1",
        event_type,
    )
    bodies: list[dict[str, Any]] = json.loads(raw)
    return bodies


async def test_a_confirmed_booking_gets_one_pdf_voucher_even_when_delivered_twice(
    env: TestEnv,
) -> None:
    booking_id = uuid4()
    event = BookingConfirmed.model_validate(facts(booking_id))
    async with channel(env.amqp_url()) as ch:
        # The booking service's queue for the reports, as if it had started: without it the
        # voucher service's reports are unroutable and stay in its outbox (retried).
        await declare_all(ch)
    async with running_consumer("voucher", env):
        for _ in range(2):
            await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(event))

        async def issued() -> bool:
            return len(await outbox_bodies(env, "VoucherIssued")) == 1

        await wait_until(issued, what="VoucherIssued in the outbox")
        await wait_until(
            lambda: _published(env), what="the outbox relayed", not_yet=(AssertionError,)
        )
    [issued_event] = await outbox_bodies(env, "VoucherIssued")
    code = voucher_code(booking_id)
    assert issued_event["code"] == code
    pdf = base64.b64decode(issued_event["pdf_base64"])
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    for expected in (code, str(booking_id), "Harbour Lights", "Grace Hopper", "1,050.00"):
        assert expected in text
    assert await fetchval(env, "SELECT count(*) FROM voucher.vouchers") == 1


async def _published(env: TestEnv) -> bool:
    unpublished = await fetchval(
        env, "SELECT count(*) FROM voucher.outbox WHERE published_at IS NULL"
    )
    return bool(unpublished == 0)


async def test_a_cancellation_voids_the_voucher_and_one_that_comes_first_prevents_it(
    env: TestEnv,
) -> None:
    issued_then_cancelled, cancelled_first = uuid4(), uuid4()
    async with running_consumer("voucher", env):
        for message in (
            event_message(BookingConfirmed.model_validate(facts(issued_then_cancelled))),
            event_message(BookingCancelled.model_validate(facts(issued_then_cancelled))),
            event_message(BookingCancelled.model_validate(facts(cancelled_first))),
            event_message(BookingConfirmed.model_validate(facts(cancelled_first))),
        ):
            await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, message)

        async def all_handled() -> bool:
            return bool(await fetchval(env, "SELECT count(*) FROM voucher.processed_events") == 4)

        await wait_until(all_handled, what="four events handled")
    statuses = {
        booking: await fetchval(
            env, "SELECT status FROM voucher.vouchers WHERE booking_id = $1", booking
        )
        for booking in (issued_then_cancelled, cancelled_first)
    }
    assert statuses == {issued_then_cancelled: "voided", cancelled_first: "voided"}
    issued = [UUID(body["booking_id"]) for body in await outbox_bodies(env, "VoucherIssued")]
    voided = [UUID(body["booking_id"]) for body in await outbox_bodies(env, "VoucherVoided")]
    assert issued == [issued_then_cancelled]
    assert sorted(voided) == sorted([issued_then_cancelled, cancelled_first])


async def test_simulated_work_holds_the_message_but_no_database_transaction(
    env: TestEnv,
) -> None:
    events = [BookingConfirmed.model_validate(facts(uuid4())) for _ in range(5)]
    async with running_consumer("voucher", env, simulated_latency_ms=1500):
        for event in events:
            await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(event))
        await wait_until(lambda: _none_ready(env), what="five messages in hand")
        open_transactions = await fetchval(
            env,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%'",
        )
        handled_meanwhile = await fetchval(env, "SELECT count(*) FROM voucher.processed_events")

        async def all_handled() -> bool:
            return bool(await fetchval(env, "SELECT count(*) FROM voucher.processed_events") == 5)

        await wait_until(all_handled, what="all five handled")
    assert (open_transactions, handled_meanwhile) == (0, 0)


async def _none_ready(env: TestEnv) -> bool:
    """Every message was delivered to the consumer (none waits in the queue)."""
    return await queue_depth(env.amqp_url(), consumer_topology("voucher").queue) == 0
