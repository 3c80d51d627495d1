"""The ack batcher against a real broker: frames of successive turns reach it in the order
they were decided, and a dead connection never holds an ack write (or a drain) forever."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection

from shared.messaging.acks import AckBatcher
from tests.support.infra import TestEnv

# More single frames than aiormq's write queue holds (10), so a turn's writer must wait.
MESSAGES = 60


@asynccontextmanager
async def delivered(
    env: TestEnv,
) -> AsyncIterator[tuple[AbstractConnection, AbstractChannel, AckBatcher, list[int]]]:
    """A channel holding MESSAGES unacked deliveries, each registered with a batcher."""
    connection = await aio_pika.connect(env.amqp_url(), timeout=5)
    try:
        channel = await connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=MESSAGES)
        queue = await channel.declare_queue("acks", durable=True)
        for _ in range(MESSAGES):
            await channel.default_exchange.publish(aio_pika.Message(b"x"), routing_key="acks")
        acks = AckBatcher(await channel.get_underlay_channel(), "acks")
        tags: list[int] = []
        everything = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            acks.delivered(message.delivery_tag)
            tags.append(message.delivery_tag or 0)
            if len(tags) == MESSAGES:
                everything.set()

        await queue.consume(on_message)
        await asyncio.wait_for(everything.wait(), 10)
        yield connection, channel, acks, sorted(tags)
    finally:
        await connection.close()


async def test_a_later_turns_multiple_ack_never_overtakes_an_earlier_turns_single_acks(
    env: TestEnv,
) -> None:
    async with delivered(env) as (_, channel, acks, tags):
        first, middle, rest = tags[0], tags[1:40], tags[40:]
        for tag in middle:  # the oldest is still in hand: 39 single frames
            acks.ack(tag)
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # that turn's frames now wait on the full write queue
        acks.ack(first)  # this turn: one multiple frame covering everything so far
        for tag in rest:
            acks.ack(tag)
        await acks.flush()
        await asyncio.sleep(0.5)  # a 406 "unknown delivery tag" would close the channel
        assert not channel.is_closed
    check = await aio_pika.connect(env.amqp_url(), timeout=5)
    try:
        queue = await (await check.channel()).declare_queue("acks", passive=True)
    finally:
        await check.close()
    assert queue.declaration_result.message_count == 0  # every delivery acked, once


async def test_acks_waiting_on_a_connection_that_closes_are_dropped_and_flush_returns(
    env: TestEnv,
) -> None:
    async with delivered(env) as (connection, _, acks, tags):
        for tag in tags[1:]:
            acks.ack(tag)
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # the writer waits on the full write queue
        await connection.close()
        await asyncio.wait_for(acks.flush(), 2)
