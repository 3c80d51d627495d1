"""A publisher that waits for the broker's confirm, with every wait bounded."""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Awaitable, Callable, Sequence

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection
from aiormq import Channel as RawChannel

from shared.errors import (
    BrokerUnavailable,
    MessageUnencodable,
    MessagingError,
    PublishRejected,
    PublishTimeout,
)
from shared.messaging.connection import CONNECTION_ERRORS, close_quietly, connect

log = logging.getLogger(__name__)

Declare = Callable[[AbstractChannel], Awaitable[None]]
# What pamqp raises for a property or header it cannot put into a frame (a str where an int
# belongs, a short string over 255 bytes, a float too large for a single): that message's
# failure, not the connection's.
ENCODING_ERRORS = (TypeError, ValueError, OverflowError, struct.error)


class ConfirmingPublisher:
    """Owns one connection used only for publishing, so a blocked publisher (a broker
    alarm) never stalls a consumer's acks. Connects lazily and again after any failure."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        connect_timeout: float = 5.0,
        publish_timeout: float = 5.0,
        declare: Declare | None = None,
    ) -> None:
        self._url = url
        self._name = name
        self._connect_timeout = connect_timeout
        self._publish_timeout = publish_timeout
        self._declare = declare
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._channel is not None and not self._channel.is_closed

    async def connect(self) -> None:
        """Connect (and declare) now rather than at the first publish."""
        await self._ensure_channel()

    async def _ensure_channel(self) -> AbstractChannel:
        async with self._lock:
            if self._channel is not None and not self._channel.is_closed:
                return self._channel
            await self._reset()
            self._connection = await connect(
                self._url, name=self._name, timeout=self._connect_timeout
            )
            try:
                channel = await asyncio.wait_for(
                    self._connection.channel(publisher_confirms=True, on_return_raises=True),
                    self._connect_timeout,
                )
                if self._declare is not None:
                    await asyncio.wait_for(self._declare(channel), self._connect_timeout)
            except Exception as exc:  # whatever failed, there is no channel to publish on
                await self._reset()
                raise BrokerUnavailable(f"cannot open a publishing channel: {exc!r}") from exc
            self._channel = channel
            log.info("publisher %s connected", self._name)
            return channel

    async def publish(self, message: aio_pika.Message, *, exchange: str, routing_key: str) -> None:
        """Return once the broker has confirmed the message; raise MessagingError otherwise."""
        [error] = await self.publish_many([message], exchange=exchange, routing_key=routing_key)
        if error is not None:
            raise error

    async def publish_many(
        self, messages: Sequence[aio_pika.Message], *, exchange: str, routing_key: str
    ) -> list[MessagingError | None]:
        """Publish on one channel at once (the confirms come back pipelined) and return, per
        message, None when confirmed or the error. Raises BrokerUnavailable when there is no
        channel to publish on at all."""
        try:
            channel = await (await self._ensure_channel()).get_underlay_channel()
            # aiormq's Channel, whose basic_publish takes wait= (its abstract type does not)
            assert isinstance(channel, RawChannel)
        except CONNECTION_ERRORS as exc:  # closed between the check and now
            await self._reset()
            raise BrokerUnavailable(f"no channel to publish on: {exc!r}") from exc
        results = await self._publish_all(channel, exchange, messages, routing_key)
        if any(isinstance(r, BrokerUnavailable | PublishTimeout) for r in results):
            await self._reset()  # the next call starts on a fresh connection
        return results

    async def _publish_all(
        self,
        channel: RawChannel,
        exchange: str,
        messages: Sequence[aio_pika.Message],
        routing_key: str,
    ) -> list[MessagingError | None]:
        """Every message published at once; whatever is not confirmed within the publish
        timeout is cancelled and answered PublishTimeout. One timer for the batch rather than
        one a message: the messages are written back to back, so each waits about as long
        as the batch (and a timer a message cost the relay ~4 µs of its ~100 a message)."""
        tasks = [
            asyncio.ensure_future(self._publish_one(channel, exchange, m, routing_key))
            for m in messages
        ]
        try:
            await asyncio.wait(tasks, timeout=self._publish_timeout)
        finally:  # on the caller's cancellation too: none outlives the call
            late = {task for task in tasks if not task.done()}
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        return [
            PublishTimeout(
                f"no confirm for message {message.message_id} within {self._publish_timeout}s"
            )
            if task in late
            else task.result()
            for task, message in zip(tasks, messages, strict=True)
        ]

    async def _publish_one(
        self, channel: RawChannel, exchange: str, message: aio_pika.Message, routing_key: str
    ) -> MessagingError | None:
        try:
            # aiormq's own publish, as aio-pika's Exchange.publish calls it but with
            # wait=False: the frames are queued for the connection's writer and the channel's
            # lock is let go, instead of held until the writer has drained them (three loop
            # turns a message; one now). Nothing is weaker: a row is marked sent on the
            # broker's confirm, never on the write, and a connection lost before the write
            # fails the confirm. aiormq's write queue keeps its 10 frames: on a busy loop a
            # batch then leaves a message a turn, so the booking service's relay yields to
            # its requests (README, "The outbox", says what a larger queue did to a
            # burst). The batch's timeout (_publish_all) bounds it all, as a publish on a
            # connection that died without a close frame could wait forever.
            await channel.basic_publish(
                message.body,
                exchange=exchange,
                routing_key=routing_key,
                properties=message.properties,
                mandatory=True,
                wait=False,
            )
        except ENCODING_ERRORS as exc:  # raised before anything was written: the link is fine
            return MessageUnencodable(f"message {message.message_id} cannot be encoded: {exc!r}")
        except aio_pika.exceptions.PublishError:  # a DeliveryError too: caught first
            return PublishRejected(f"message {message.message_id} was unroutable")
        except aio_pika.exceptions.DeliveryError:
            return PublishRejected(f"broker nacked message {message.message_id}")
        except CONNECTION_ERRORS as exc:
            return BrokerUnavailable(f"publish failed: {exc!r}")
        except Exception as exc:  # not the link's failure (those are above): this message's
            return PublishRejected(f"publishing message {message.message_id} failed: {exc!r}")
        return None

    async def _reset(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        await close_quietly(connection)

    async def close(self) -> None:
        async with self._lock:
            await self._reset()
