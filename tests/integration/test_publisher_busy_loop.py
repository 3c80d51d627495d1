"""A publish does not wait for aiormq's writer to drain it: on a loop busy with other work (the
booking service's relay shares its loop with the HTTP requests) a batch leaves a message a
turn of the loop, not three (aio-pika's publish held the channel's lock until the writer had
written each message). One a turn, not all at once, is on purpose: aiormq queues at most 10
frames for its writer, so under load the relay yields to the requests (README, "The
outbox")."""

from __future__ import annotations

import asyncio
import time
from uuid import uuid4

import aio_pika

from shared.messaging.publisher import ConfirmingPublisher
from tests.support.amqp import outbox_messages
from tests.support.infra import TestEnv

BATCH = 200  # the relay's default batch


async def test_a_batch_of_publishes_takes_a_loop_turn_a_message_not_three(
    env: TestEnv,
) -> None:
    publisher = ConfirmingPublisher(env.amqp_url(), name="busy-loop")
    connection = await aio_pika.connect(env.amqp_url())
    turns, stop = 0, asyncio.Event()

    async def other_work() -> None:  # every turn of the loop costs 5 ms
        nonlocal turns
        while not stop.is_set():
            time.sleep(0.005)  # noqa: ASYNC251 (blocking on purpose: the loop is busy)
            turns += 1
            await asyncio.sleep(0)

    try:
        channel = await connection.channel()
        # A classic queue the default exchange routes to: its confirms come at once, so the
        # turns counted are the publisher's own.
        queue = await channel.declare_queue(f"busy-loop-{uuid4()}", exclusive=True)
        await publisher.connect()
        messages = outbox_messages(BATCH)
        busy = asyncio.create_task(other_work())
        await asyncio.sleep(0.01)
        before = turns
        errors = await publisher.publish_many(messages, exchange="", routing_key=queue.name)
        used = turns - before
        stop.set()
        await busy
        assert errors == [None] * BATCH
        # Three turns a message before (609 here), one now (199), whatever a turn costs.
        assert used < BATCH * 1.5, f"{BATCH} publishes took {used} turns of the loop"
        assert (await queue.declare()).message_count == BATCH  # every one confirmed is there
    finally:
        stop.set()
        await publisher.close()
        await connection.close()
