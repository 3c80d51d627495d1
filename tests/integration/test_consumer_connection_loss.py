"""The consumer runtime when its broker connection drops while a handler is in progress."""

from __future__ import annotations

import asyncio

from shared.db.pool import Connection
from shared.events import BookingConfirmed
from shared.messaging.envelope import event_message
from shared.messaging.handlers import route
from shared.messaging.topology import EVENTS_EXCHANGE, consumer_topology
from tests.support.amqp import publish_raw, queue_depth
from tests.support.events import confirmed, record_email
from tests.support.infra import AMQP_HOST, AMQP_PORT, TestEnv
from tests.support.stack import effects, equals, running_consumer, wait_until
from tests.support.tcp_proxy import TcpProxy


async def test_a_handler_in_progress_when_the_connection_drops_finishes_and_acts_once(
    env: TestEnv,
) -> None:
    """A handler's work (a transaction, an SMTP send) does not need the broker: cancelled
    when the connection dropped, an email already sent but not yet recorded went out again
    on the redelivery. It must finish instead; only its ack is lost."""
    calls: list[str] = []
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow_send(event: BookingConfirmed, tx: Connection) -> None:
        calls.append(str(event.event_id))
        entered.set()
        await release.wait()  # the SMTP server is taking the message
        await record_email(tx, event)

    handlers = dict([route(BookingConfirmed, slow_send)])
    async with (
        TcpProxy(AMQP_HOST, AMQP_PORT) as proxy,
        running_consumer(
            "email", env, handlers=handlers, amqp_url=env.amqp_url(port=proxy.port)
        ) as process,
    ):
        await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(confirmed()))
        await asyncio.wait_for(entered.wait(), 10)
        await proxy.cut()
        await asyncio.sleep(0.5)  # the runtime has seen the connection go
        await proxy.restore()
        release.set()
        # The unacked original comes back on the new connection: absorbed as a duplicate if
        # the first run finished, handled a second time if it was cancelled.
        stats = process.consumer.stats
        await wait_until(lambda: len(calls) + stats["duplicates"] >= 2, what="the redelivery")
        queue = consumer_topology("email").queue
        await wait_until(lambda: equals(queue_depth(env.amqp_url(), queue), 0), what="empty")
        assert await effects(env, "email") == 1
    assert len(calls) == 1, "the handler was cancelled midway and ran again"
    assert stats["duplicates"] == 1
