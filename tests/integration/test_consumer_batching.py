"""Deliveries recorded several per transaction (BATCH_SIZE > 1), against real RabbitMQ and
PostgreSQL, with the voucher service's real handlers."""

from __future__ import annotations

import logging
from uuid import UUID

import aio_pika
import pytest

from services.voucher.handlers import issue_voucher
from shared.consumer_service import consumer_config
from shared.db.pool import Connection
from shared.errors import ConfigurationError, PermanentError
from shared.events import BookingConfirmed, Event
from shared.messaging.envelope import event_message
from shared.messaging.handlers import route
from shared.messaging.topology import EVENTS_EXCHANGE, consumer_topology, declare_all
from shared.settings import ConsumerSettings
from tests.support.amqp import queue_depth
from tests.support.events import confirmed
from tests.support.infra import TestEnv
from tests.support.stack import effects, equals, fetchval, running_consumer, wait_until

VOUCHER = consumer_topology("voucher")


async def prefill(url: str, events: list[BookingConfirmed]) -> None:
    """Queued before the consumer starts, so deliveries arrive together, as under load."""
    connection = await aio_pika.connect(url, timeout=5)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare_all(channel)
        exchange = await channel.get_exchange(EVENTS_EXCHANGE, ensure=False)
        for event in events:
            await exchange.publish(event_message(event), routing_key="")
    finally:
        await connection.close()


async def reports(env: TestEnv) -> int:
    return int(
        await fetchval(
            env, "SELECT count(*) FROM voucher.outbox WHERE event_type = 'FulfilmentProgressed'"
        )
    )


async def test_a_batch_records_each_event_once_with_its_report_and_skips_duplicates(
    env: TestEnv,
) -> None:
    events = [confirmed() for _ in range(120)]
    url = env.amqp_url()
    await prefill(url, [*events, *events[:20]])  # 20 delivered twice
    async with running_consumer("voucher", env, prefetch=60, batch_size=30) as process:
        await wait_until(lambda: equals(effects(env, "voucher"), 120), what="120 vouchers")
        await wait_until(lambda: equals(reports(env), 120), what="120 reports")
        await wait_until(
            lambda: process.consumer.stats["acked"] == 140, what="every delivery acked"
        )
    assert process.consumer.stats["duplicates"] == 20
    assert await queue_depth(url, VOUCHER.queue) == 0
    # several deliveries shared a transaction: fewer distinct transaction ids than events
    transactions = await fetchval(
        env, "SELECT count(DISTINCT xmin::text) FROM voucher.processed_events"
    )
    assert transactions < 120


async def test_one_failing_event_in_a_batch_is_dead_lettered_and_the_rest_recorded_once(
    env: TestEnv, caplog: pytest.LogCaptureFixture
) -> None:
    events = [confirmed() for _ in range(40)]
    poison: set[UUID] = {events[7].event_id, events[23].event_id}

    async def issue_unless_poison(event: BookingConfirmed, tx: Connection) -> list[Event]:
        if event.event_id in poison:
            raise PermanentError("refused on purpose")
        return await issue_voucher(event, tx)

    caplog.set_level(logging.INFO, logger="shared.messaging.batching")
    url = env.amqp_url()
    handlers = dict([route(BookingConfirmed, issue_unless_poison)])
    await prefill(url, events)
    async with running_consumer(
        "voucher", env, handlers=handlers, prefetch=40, batch_size=40
    ) as process:
        await wait_until(lambda: equals(effects(env, "voucher"), 38), what="38 vouchers")
        await wait_until(
            lambda: equals(queue_depth(url, VOUCHER.dead_letter_queue), 2), what="2 dead"
        )
    assert await effects(env, "voucher") == 38
    assert await reports(env) == 38 + 2  # done for 38, failed for the two
    assert process.consumer.stats["duplicates"] == 0
    assert "one by one" in caplog.text  # the fallback ran


@pytest.mark.parametrize("service", ["email", "notification"])
def test_batching_is_refused_for_consumers_with_effects_outside_their_database(
    service: str,
) -> None:
    settings = ConsumerSettings(database_url="postgresql://x/y", amqp_url="amqp://x", batch_size=10)
    with pytest.raises(ConfigurationError, match="BATCH_SIZE must be 1"):
        consumer_config(service, settings)
