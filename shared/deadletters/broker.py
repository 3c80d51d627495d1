"""Reading a dead-letter queue without losing or moving what is not taken.

Measured on RabbitMQ 3.10.8 quorum queues (the DLQs are quorum queues), and relied on here:

* a message nacked with ``requeue=True`` goes to the TAIL of the queue;
* a message still unacked when its channel closes goes back to the HEAD (a peek);
* ``basic.get`` costs a round trip per message (~500/s on the dev machine), so scans
  consume with a bounded prefetch instead;
* the declare-ok message count counts ready messages only (not those another client holds).

So a scan consumes with prefetch, stops after the number of messages that were ready when it
began (anything requeued to the tail in the meantime comes after them: no endless loop), and
closes its channel at the end, which puts whatever it still holds back at the head.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from shared.deadletters.errors import BrokerUnreachable, QueueMissing
from shared.messaging.connection import CONNECTION_ERRORS


class Scan:
    """The deliveries of one consumer on a queue. ``ready`` is the queue's depth at start."""

    def __init__(
        self, channel: AbstractChannel, ready: int, idle_timeout: float, timeout: float
    ) -> None:
        self.ready = ready
        self._channel = channel
        self._idle = idle_timeout
        self._timeout = timeout
        self.buffer: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()

    async def next(self) -> AbstractIncomingMessage | None:
        """The next delivery, or None when none came within the idle timeout."""
        try:
            return await asyncio.wait_for(self.buffer.get(), self._idle)
        except TimeoutError:
            if self._channel.is_closed:
                raise BrokerUnreachable("the broker closed the channel during the scan") from None
            return None

    async def ack(self, message: AbstractIncomingMessage, *, through: bool = False) -> None:
        """Remove ``message`` (``through``: and every unsettled one delivered before it, one
        frame for a whole batch) from the queue."""
        await self._settle(message, requeue=None, multiple=through)

    async def requeue(self, message: AbstractIncomingMessage, *, through: bool = False) -> None:
        """Back into the queue (at its tail): the message stays in the dead-letter queue."""
        await self._settle(message, requeue=True, multiple=through)

    async def _settle(
        self, message: AbstractIncomingMessage, requeue: bool | None, multiple: bool
    ) -> None:
        try:
            if requeue is None:
                await asyncio.wait_for(message.ack(multiple=multiple), self._timeout)
            else:
                await asyncio.wait_for(
                    message.nack(requeue=requeue, multiple=multiple), self._timeout
                )
        except CONNECTION_ERRORS as exc:
            raise BrokerUnreachable(f"lost the broker while settling a message: {exc!r}") from exc


@asynccontextmanager
async def scanning(
    connection: AbstractConnection,
    queue_name: str,
    *,
    prefetch: int,
    idle_timeout: float,
    timeout: float,
) -> AsyncIterator[Scan]:
    """Consume ``queue_name`` for the duration of the block; whatever is still unacked at the
    end returns to the queue's head when the channel closes (also if this process dies)."""
    try:
        channel = await asyncio.wait_for(connection.channel(publisher_confirms=False), timeout)
        await asyncio.wait_for(channel.set_qos(prefetch_count=prefetch), timeout)
        queue = await asyncio.wait_for(channel.declare_queue(queue_name, passive=True), timeout)
        scan = Scan(channel, queue.declaration_result.message_count or 0, idle_timeout, timeout)
        if scan.ready:
            await asyncio.wait_for(queue.consume(scan.buffer.put), timeout)
    except aiormq.exceptions.ChannelNotFoundEntity as exc:
        raise QueueMissing(f"{queue_name} does not exist: start its service once") from exc
    except CONNECTION_ERRORS as exc:
        raise BrokerUnreachable(f"cannot read {queue_name}: {exc!r}") from exc
    try:
        yield scan
    finally:
        await _close(channel, timeout)


async def _close(channel: AbstractChannel, timeout: float) -> None:
    if channel.is_closed:
        return
    # A failure means the connection is going too; the broker then requeues on its own.
    with contextlib.suppress(*CONNECTION_ERRORS):
        await asyncio.wait_for(channel.close(), timeout)


async def require_queue(channel: AbstractChannel, queue_name: str) -> None:
    """Fail clearly when ``queue_name`` does not exist (a passive declare needs no rights)."""
    try:
        await channel.declare_queue(queue_name, passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity as exc:
        raise QueueMissing(f"{queue_name} does not exist: start its service once") from exc


async def depth(connection: AbstractConnection, queue_name: str, timeout: float) -> int:
    """Ready messages in ``queue_name``; 0 when the queue was never declared (its service
    has not started yet, so nothing can have been dead-lettered)."""
    ready, _ = await counts(connection, queue_name, timeout)
    return ready


async def counts(
    connection: AbstractConnection, queue_name: str, timeout: float
) -> tuple[int, int]:
    """Ready messages and consumers attached (0, 0 when the queue was never declared)."""
    try:
        channel = await asyncio.wait_for(connection.channel(publisher_confirms=False), timeout)
        try:
            queue = await asyncio.wait_for(channel.declare_queue(queue_name, passive=True), timeout)
            result = queue.declaration_result
            return result.message_count or 0, result.consumer_count or 0
        except aiormq.exceptions.ChannelNotFoundEntity:
            return 0, 0
        finally:
            await _close(channel, timeout)
    except CONNECTION_ERRORS as exc:
        raise BrokerUnreachable(f"cannot read {queue_name}: {exc!r}") from exc


async def peek(
    connection: AbstractConnection, queue_name: str, timeout: float
) -> AbstractIncomingMessage | None:
    """The message at the head, left in place: got unacked, returned by closing the channel."""
    try:
        channel = await asyncio.wait_for(connection.channel(publisher_confirms=False), timeout)
        try:
            queue = await asyncio.wait_for(channel.declare_queue(queue_name, passive=True), timeout)
            return await queue.get(no_ack=False, fail=False, timeout=timeout)
        except aiormq.exceptions.ChannelNotFoundEntity:
            return None
        finally:
            await _close(channel, timeout)
    except CONNECTION_ERRORS as exc:
        raise BrokerUnreachable(f"cannot read {queue_name}: {exc!r}") from exc
