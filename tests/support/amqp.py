"""Test helpers that look at the broker directly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from uuid import uuid4

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from shared.messaging.envelope import outbox_message


def outbox_messages(count: int) -> list[aio_pika.Message]:
    """``count`` messages as the outbox relay publishes them, each with an empty body."""
    return [
        outbox_message(
            event_id=uuid4(),
            event_type="BookingConfirmed",
            booking_id=uuid4(),
            occurred_at=datetime.now(UTC),
            body=b"{}",
        )
        for _ in range(count)
    ]


@asynccontextmanager
async def channel(url: str) -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect(url, timeout=5)
    try:
        yield await connection.channel()
    finally:
        await connection.close()


async def queue_depth(url: str, queue: str) -> int:
    async with channel(url) as ch:
        declared = await ch.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0


async def take(
    url: str, queue: str, expected: int, timeout: float = 15.0
) -> list[AbstractIncomingMessage]:
    """Get (and ack) up to ``expected`` messages from a queue, waiting for them to arrive."""
    messages: list[AbstractIncomingMessage] = []
    deadline = time.monotonic() + timeout
    async with channel(url) as ch:
        declared = await ch.declare_queue(queue, passive=True)
        while len(messages) < expected and time.monotonic() < deadline:
            message = await declared.get(fail=False)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            await message.ack()
            messages.append(message)
    return messages


async def publish_raw(
    url: str, exchange: str, message: aio_pika.Message, routing_key: str = ""
) -> None:
    async with channel(url) as ch:
        target = await ch.get_exchange(exchange) if exchange else ch.default_exchange
        await target.publish(message, routing_key=routing_key)
