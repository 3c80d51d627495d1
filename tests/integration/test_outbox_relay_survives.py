"""The outbox relay keeps running whatever goes wrong in a pass."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aio_pika
import asyncpg
import pytest

from services.booking.bootstrap import MIGRATIONS
from shared.db.migrate import migrate
from shared.db.schemas import service_migrations
from shared.errors import MessagingError
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import EVENTS_EXCHANGE, declare_all
from shared.outbox.relay import OutboxRelay
from tests.integration.test_outbox_relay import _fill_outbox
from tests.support.amqp import channel
from tests.support.infra import TestEnv
from tests.support.stack import fetchval, wait_until


class FailsOnce(ConfirmingPublisher):
    """A real publisher whose first batch meets an error nobody foresaw: asyncpg's
    InternalClientError on a connection broken by a PostgreSQL restart, or a CancelledError
    from a future of a broker connection that died under the relay, both seen in the chaos
    suite."""

    failed = False
    error: BaseException = ValueError("nobody saw this coming")

    async def publish_many(
        self, messages: Sequence[aio_pika.Message], *, exchange: str, routing_key: str
    ) -> list[MessagingError | None]:
        if not self.failed:
            self.failed = True
            raise self.error
        return await super().publish_many(messages, exchange=exchange, routing_key=routing_key)


@pytest.mark.parametrize(
    "error", [ValueError("nobody saw this coming"), asyncio.CancelledError()], ids=type
)
async def test_the_relay_survives_an_unforeseen_error_and_publishes_on_the_next_pass(
    env: TestEnv, error: BaseException
) -> None:
    pool = await asyncpg.create_pool(env.database_url, min_size=1, max_size=2)
    assert pool is not None
    await migrate(pool, "booking", service_migrations(MIGRATIONS))
    async with channel(env.amqp_url()) as ch:
        await declare_all(ch)
    await _fill_outbox(pool, 3)
    publisher = FailsOnce(env.amqp_url(), name="relay", declare=declare_all)
    publisher.error = error
    relay = OutboxRelay(
        pool, publisher, schema="booking", exchange=EVENTS_EXCHANGE, retry_max_delay=0.2
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await wait_until(lambda: relay.published == 3 or task.done(), what="the rows relayed")
        assert not task.done(), "the relay died"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await publisher.close()
        await pool.close()
    assert publisher.failed
    unsent = await fetchval(env, "SELECT count(*) FROM booking.outbox WHERE published_at IS NULL")
    assert unsent == 0
