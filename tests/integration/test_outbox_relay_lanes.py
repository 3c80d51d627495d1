"""The relay's two lanes of passes: an event committed while a pass waits for the broker's
confirms leaves at once, without waiting for that pass to end."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aio_pika
import asyncpg

from services.booking.bootstrap import MIGRATIONS
from shared.db.migrate import migrate
from shared.db.schemas import service_migrations
from shared.errors import MessagingError
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import EVENTS_EXCHANGE, declare_all
from shared.outbox.relay import OutboxRelay
from tests.integration.test_outbox_relay import _fill_outbox
from tests.support.infra import TestEnv
from tests.support.stack import wait_until


class FirstBatchHeld(ConfirmingPublisher):
    """A real publisher whose first batch waits for ``release`` before it is published, as
    a batch does whose confirms are slow to come."""

    def __init__(self, url: str) -> None:
        super().__init__(url, name="relay-lanes", declare=declare_all)
        self.release = asyncio.Event()
        self.batches = 0

    async def publish_many(
        self, messages: Sequence[aio_pika.Message], *, exchange: str, routing_key: str
    ) -> list[MessagingError | None]:
        self.batches += 1
        if self.batches == 1:
            await self.release.wait()
        return await super().publish_many(messages, exchange=exchange, routing_key=routing_key)


async def _unsent(pool: asyncpg.Pool) -> int:
    count = await pool.fetchval("SELECT count(*) FROM booking.outbox WHERE published_at IS NULL")
    return int(count)


async def test_an_event_committed_while_a_pass_waits_for_its_confirms_is_published_at_once(
    env: TestEnv,
) -> None:
    pool = await asyncpg.create_pool(env.database_url, min_size=1, max_size=4)
    assert pool is not None
    await migrate(pool, "booking", service_migrations(MIGRATIONS))
    publisher = FirstBatchHeld(env.amqp_url())
    relay = OutboxRelay(pool, publisher, schema="booking", exchange=EVENTS_EXCHANGE)
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    try:
        await _fill_outbox(pool, 1)
        relay.wake()
        await wait_until(lambda: publisher.batches == 1, what="the first batch held")
        await _fill_outbox(pool, 1)  # committed while the first pass waits
        relay.wake()
        await wait_until(lambda: relay.published == 1, timeout=5, what="the second event sent")
        assert await _unsent(pool) == 1  # the first is still in its pass
        publisher.release.set()
        await wait_until(lambda: relay.published == 2, what="the first event sent")
        assert await _unsent(pool) == 0
    finally:
        publisher.release.set()
        stop.set()
        await running
        await publisher.close()
        await pool.close()
