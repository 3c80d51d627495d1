"""Deliveries recorded several per transaction (BATCH_SIZE > 1), against real RabbitMQ and
PostgreSQL, with the voucher service's real handlers."""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

import aio_pika
import asyncpg
import pytest

from services.voucher.bootstrap import MIGRATIONS as VOUCHER_MIGRATIONS
from services.voucher.handlers import issue_voucher
from shared.consumer_service import consumer_config
from shared.db.migrate import CONSUMER_MIGRATIONS, migrate
from shared.db.pool import Connection
from shared.errors import ConfigurationError, PermanentError, TransientError
from shared.events import BookingConfirmed, Event
from shared.messaging.batching import BatchRecorder
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


@pytest.mark.parametrize(
    "death", ["cancelled_mid_transaction", "cancelled_before_it_started", "a_callback_raised"]
)
async def test_a_batch_task_that_dies_settles_every_waiting_delivery_with_a_transient_error(
    env: TestEnv, death: str
) -> None:
    """The batch task can die past its own handling (cancelled, or a callback outside its
    try raising): every record() waiting on it, in its batch or queued behind it, must get a
    TransientError (the consumer's retry path) promptly, and the recorder must work again."""
    pool = await asyncpg.create_pool(env.database_url, min_size=1, max_size=2)
    assert pool is not None
    await migrate(pool, "voucher", [CONSUMER_MIGRATIONS, VOUCHER_MIGRATIONS])
    in_transaction = asyncio.Event()
    never = asyncio.Event()
    committed: list[int] = []
    one_by_one: list[Event] = []

    async def issue_and_hold(event: BookingConfirmed, tx: Connection) -> list[Event]:
        emitted = await issue_voucher(event, tx)  # a real row, in the batch's transaction
        if death == "cancelled_mid_transaction" and not in_transaction.is_set():
            in_transaction.set()
            await never.wait()  # holds the first batch inside its open transaction
        return emitted

    def on_commit() -> None:
        committed.append(1)
        if death == "a_callback_raised" and len(committed) == 1:
            raise RuntimeError("on_commit failed")  # after the try of _record_batch

    async def handle_one(event: Event, attempts: int) -> None:
        one_by_one.append(event)  # the batch's own fallback: must not be what settles them

    recorder = BatchRecorder(
        pool,
        "voucher",
        dict([route(BookingConfirmed, issue_and_hold)]),
        progress=lambda event, attempts: None,
        handle_one=handle_one,
        on_commit=on_commit,
        count=lambda outcome: None,
        max_size=3,
    )
    events = [confirmed() for _ in range(7)]  # a batch of 3, and 4 waiting behind it
    try:
        deliveries = [asyncio.ensure_future(recorder.record(e, 1)) for e in events]
        if death == "cancelled_before_it_started":
            await asyncio.sleep(0)  # each record() has queued its delivery and started the task
            task = recorder._running
            assert task is not None
            assert len(recorder._waiting) == len(events)  # no batch taken yet: not started
            task.cancel()  # before its first step: the coroutine's body never runs
        elif death == "cancelled_mid_transaction":
            await asyncio.wait_for(in_transaction.wait(), 5)
            task = recorder._running
            assert task is not None
            task.cancel()
        outcomes = await asyncio.wait_for(asyncio.gather(*deliveries, return_exceptions=True), 5)
        assert [type(o) for o in outcomes] == [TransientError] * len(events), outcomes
        assert all("batch recording was interrupted" in str(o) for o in outcomes)
        assert one_by_one == []
        recorded = 3 if death == "a_callback_raised" else 0  # committed before on_commit raised
        assert await fetchval(env, "SELECT count(*) FROM voucher.processed_events") == recorded
        assert await effects(env, "voucher") == recorded
        # not wedged: the next delivery starts a new batch task, and is recorded
        await asyncio.wait_for(recorder.record(events[-1], 2), 5)
        assert await effects(env, "voucher") == recorded + 1
    finally:
        never.set()
        await pool.close()
