"""A consumer's subscription to its queue: the connection side of the consumer runtime.

It connects, declares the consumer's topology, consumes, and hands each delivery to the
consumer (shared/messaging/consumer.py) as a task of its own. When the connection, the
channel or the consumer itself is lost it connects again, with capped backoff; on stop it
drains: no new deliveries, those in hand get a grace period, pending acks are written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aio_pika import IncomingMessage
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage, AbstractQueue, ConsumerTag
from aiormq.abc import AbstractChannel as RawChannel
from aiormq.abc import DeliveredMessage

from shared.errors import BrokerUnavailable
from shared.messaging.acks import AckBatcher
from shared.messaging.config import ConsumerConfig
from shared.messaging.connection import (
    CONNECTION_ERRORS,
    close_quietly,
    connect,
    on_consumer_cancelled,
)
from shared.messaging.held import HeldDeliveries
from shared.messaging.topology import ConsumerTopology, declare_consumer
from shared.observability.metrics import QueueMetrics
from shared.waiting import first_of

log = logging.getLogger(__name__)

# Settles one delivery: acks it, or parks it, through the channel's ack batcher.
Deliver = Callable[[AbstractIncomingMessage, AckBatcher], Awaitable[None]]


class Subscription:
    def __init__(
        self,
        config: ConsumerConfig,
        names: ConsumerTopology,
        metrics: QueueMetrics,
        deliver: Deliver,
    ) -> None:
        self.config = config
        self.names = names
        self.metrics = metrics
        self._deliver = deliver
        self._inflight: set[asyncio.Task[Any]] = set()
        self.held = HeldDeliveries()
        metrics.watch(self.held)
        self._stopping = False
        self._consuming = False

    @property
    def consuming(self) -> bool:
        """True while the subscription is live: set after basic.consume succeeded, cleared
        the moment the connection, the channel or the consumer itself is lost."""
        return self._consuming

    @consuming.setter
    def consuming(self, value: bool) -> None:
        self._consuming = value
        self.metrics.consuming(value)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, reconnecting (with capped backoff) whenever the
        connection or channel is lost. Returns after a graceful drain."""
        delay = 0.1
        while not stop.is_set():
            try:
                await self._consume_until_lost(stop)
                delay = 0.1
            except BrokerUnavailable as exc:
                log.warning(
                    "%s: broker unavailable, retrying in %.1fs: %s", self.names.queue, delay, exc
                )
            except Exception:  # not a lost link, yet the loop must live: say it loudly
                log.exception("%s: subscribing failed; retrying in %.1fs", self.names.queue, delay)
            if not stop.is_set():
                await first_of(stop, timeout=delay)
                delay = min(delay * 2, self.config.reconnect_max_delay)

    async def _consume_until_lost(self, stop: asyncio.Event) -> None:
        connection = await connect(
            self.config.amqp_url,
            name=f"{self.config.service}-consumer",
            timeout=self.config.connect_timeout,
        )
        lost = asyncio.Event()
        connection.close_callbacks.add(lambda *_: lost.set())
        try:
            queue, tag, acks = await asyncio.wait_for(
                self._subscribe(connection, lost), self.config.connect_timeout
            )
            self.consuming = True
            log.info("%s: consuming (prefetch %d)", self.names.queue, self.config.prefetch)
            await first_of(stop, lost)
            self.consuming = False
            if stop.is_set() and not lost.is_set():
                await self._drain(queue, tag, acks)
            elif lost.is_set():
                self.metrics.subscription_lost()
                log.warning("%s: subscription lost; reconnecting", self.names.queue)
        except CONNECTION_ERRORS as exc:
            raise BrokerUnavailable(f"consuming {self.names.queue} failed: {exc!r}") from exc
        finally:
            self.consuming = False
            await close_quietly(connection)

    async def _subscribe(
        self, connection: AbstractConnection, lost: asyncio.Event
    ) -> tuple[AbstractQueue, ConsumerTag, AckBatcher]:
        channel = await connection.channel(publisher_confirms=False)
        channel.close_callbacks.add(lambda *_: lost.set())
        await channel.set_qos(prefetch_count=self.config.prefetch)
        await declare_consumer(channel, self.names)
        queue = await channel.get_queue(self.names.queue, ensure=False)
        # One batcher per channel: a delivery tag means something on its own channel only.
        raw = await channel.get_underlay_channel()
        acks = AckBatcher(raw, self.names.queue, gather=self.config.prefetch // 4)
        # Consumed through aiormq rather than queue.consume, which builds the IncomingMessage
        # where a failure would leave the delivery unsettled and out of our sight.
        consume = await raw.basic_consume(
            self.names.queue, partial(self._on_delivered, channel=raw, acks=acks)
        )
        tag = consume.consumer_tag
        if tag is None:
            raise BrokerUnavailable(f"the broker gave no consumer tag for {self.names.queue}")
        # A consumer the broker cancels (its queue deleted, a quorum leader moved) leaves
        # the connection up and idle: treat it as a loss, so the loop consumes again.
        await on_consumer_cancelled(channel, tag, lost.set)
        return queue, tag, acks

    async def _drain(self, queue: AbstractQueue, tag: ConsumerTag, acks: AckBatcher) -> None:
        """Stop taking messages, give those in hand the grace period, then close: whatever is
        still unacked is requeued by the broker when the channel closes."""
        self._stopping = True
        try:
            await asyncio.wait_for(queue.cancel(tag), self.config.connect_timeout)
        except CONNECTION_ERRORS as exc:
            log.warning("%s: cancel failed: %r", self.names.queue, exc)
        if self._inflight:
            log.info("%s: finishing %d message(s) in hand", self.names.queue, len(self._inflight))
            _, pending = await asyncio.wait(set(self._inflight), timeout=self.config.shutdown_grace)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("%s: %d message(s) left for redelivery", self.names.queue, len(pending))
                await asyncio.wait(pending, timeout=1.0)
        await asyncio.wait_for(acks.flush(), self.config.connect_timeout)

    async def _on_delivered(
        self, delivered: DeliveredMessage, *, channel: RawChannel, acks: AckBatcher
    ) -> None:
        try:
            message = IncomingMessage(delivered)
        except Exception as exc:  # properties aio-pika cannot represent (amqp_codec saw them)
            tag = getattr(delivered.delivery, "delivery_tag", None)
            log.error("%s: unreadable delivery %s rejected: %r", self.names.queue, tag, exc)
            if tag is not None:  # the work queue's dead-letter exchange takes it as it is
                await channel.basic_reject(tag, requeue=False)
            return
        await self._on_message(message, acks)

    async def _on_message(self, message: AbstractIncomingMessage, acks: AckBatcher) -> None:
        if self._stopping:
            return  # left unacked: requeued when the channel closes
        acks.delivered(message.delivery_tag)
        # The work is our own task, not the one aio-pika runs this callback in: those are
        # cancelled when their channel closes. The work (a transaction, an SMTP send) does
        # not need the broker, so it runs to its end; only the ack is lost, and the
        # redelivery is absorbed by the idempotency record. Cancelled midway, an email sent
        # but not yet recorded went out twice.
        work = asyncio.ensure_future(self._deliver(message, acks))
        self._inflight.add(work)
        self.held.take(work)
        work.add_done_callback(self._settled)

    def _settled(self, work: asyncio.Task[Any]) -> None:
        self._inflight.discard(work)
        self.held.settle(work)
        if not work.cancelled() and work.exception() is not None:
            # _deliver settles every failure itself; anything escaping it is a bug, and its
            # message stays unacked until the channel closes: say so, never silently.
            log.error(
                "%s: a delivery failed unsettled", self.names.queue, exc_info=work.exception()
            )
