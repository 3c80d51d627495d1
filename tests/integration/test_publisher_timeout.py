"""A broker that stops answering mid-batch: every message of the batch is answered
PublishTimeout within the publish timeout (one timer for the whole batch), no publish is left
running behind the call, and the next batch goes out on a fresh connection."""

from __future__ import annotations

import asyncio
import time
from uuid import uuid4

import aio_pika

from shared.errors import PublishTimeout
from shared.messaging.publisher import ConfirmingPublisher
from tests.support.amqp import outbox_messages
from tests.support.infra import AMQP_HOST, AMQP_PORT, TestEnv
from tests.support.tcp_proxy import TcpProxy

BATCH = 50
TIMEOUT = 1.0
CLOSE = 2.0  # close_quietly's bound on closing the connection that stopped answering


def _publishes_running() -> list[asyncio.Task[object]]:
    return [
        task
        for task in asyncio.all_tasks()
        if "_publish_one" in repr(task.get_coro()) and not task.done()
    ]


async def test_a_batch_the_broker_never_confirms_times_out_as_a_whole_and_the_next_reconnects(
    env: TestEnv,
) -> None:
    connection = await aio_pika.connect(env.amqp_url())
    async with TcpProxy(AMQP_HOST, AMQP_PORT) as proxy:
        publisher = ConfirmingPublisher(
            env.amqp_url(port=proxy.port), name="timeout", publish_timeout=TIMEOUT
        )
        try:
            channel = await connection.channel()
            queue = await channel.declare_queue(f"timeout-{uuid4()}", exclusive=True)
            await publisher.connect()
            await proxy.deafen()  # what we send arrives; nothing comes back: no confirm
            started = time.monotonic()
            errors = await asyncio.wait_for(
                publisher.publish_many(outbox_messages(BATCH), exchange="", routing_key=queue.name),
                TIMEOUT + CLOSE + 5,
            )
            took = time.monotonic() - started

            assert all(isinstance(error, PublishTimeout) for error in errors), errors
            assert TIMEOUT <= took < TIMEOUT + CLOSE + 1, f"the batch took {took:.2f}s"
            assert not _publishes_running()
            assert not publisher.connected  # a timeout drops the connection

            await proxy.restore()
            again = await publisher.publish_many(
                outbox_messages(3), exchange="", routing_key=queue.name
            )
            assert again == [None] * 3
            # The timed-out ones may have reached the queue too (at least once, never lost).
            assert ((await queue.declare()).message_count or 0) >= 3
        finally:
            await publisher.close()
            await connection.close()
