"""The consumer runtime shared by every consumer service.

What happens to one delivery::

    decode ── invalid (not JSON, wrong schema, unknown version, no message_id) ──► dead-letter
      │  ── a type this service does not handle ──► ack and log
      ▼
    one transaction: claim event_id in processed_events ── already claimed ──► ack (duplicate)
      │  handler(event, tx)
      ├── returns events ───────► written to the service's outbox in the same transaction,
    │                            with a FulfilmentProgressed(done) report; commit, ack
      ├── PermanentError ───────► dead-letter
      └── anything else ────────► retry queue after backoff, or dead-letter when attempts run out

Retries and dead letters are reported too (retrying, failed), so the booking service can
show each step's status. A retried or dead-lettered copy is confirmed by the broker before
the original is acked, so a crash in between yields a duplicate (absorbed by the idempotency
record), never a loss.

Each delivery runs in a consumer span (child of the publisher's, from the ``traceparent``
header), with its event_id, booking_id and correlation_id on every log line, and is counted
in the process's metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import asyncpg
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage, AbstractQueue, ConsumerTag
from opentelemetry import trace

from shared.db.pool import Connection, acquire
from shared.errors import (
    BrokerUnavailable,
    InvalidMessage,
    PermanentError,
    UnhandledEventType,
)
from shared.events import BOOKING_EVENTS, Event, FulfilmentProgressed, StepStatus
from shared.messaging import retry
from shared.messaging.acks import AckBatcher
from shared.messaging.batching import BatchRecorder
from shared.messaging.connection import (
    CONNECTION_ERRORS,
    close_quietly,
    connect,
    on_consumer_cancelled,
)
from shared.messaging.envelope import decode_message
from shared.messaging.parking import Parking
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import consumer_topology, declare_consumer
from shared.observability.metrics import Metrics
from shared.observability.tracing import delivery_scope, fail
from shared.outbox import add_to_outbox
from shared.waiting import first_of

log = logging.getLogger(__name__)

# A handler returns the events its effect caused (or None); they are published through the
# service's outbox, committed with the effect.
Emitted = Sequence[Event] | None
Handler = Callable[[Event, Connection], Awaitable[Emitted]]
E = TypeVar("E", bound=Event)


def route(
    event_class: type[E], handler: Callable[[E, Connection], Awaitable[Emitted]]
) -> tuple[str, Handler]:
    """One entry of a service's ``{event type: handler}`` dict, keeping handlers typed."""

    async def handle(event: Event, tx: Connection) -> Emitted:
        if not isinstance(event, event_class):
            raise InvalidMessage(f"expected {event_class.__name__}, got {type(event).__name__}")
        return await handler(event, tx)

    return event_class.event_type, handle


@dataclass(frozen=True)
class ConsumerConfig:
    service: str
    amqp_url: str
    prefetch: int = 50
    retry_policy: retry.RetryPolicy = field(default_factory=retry.RetryPolicy)
    connect_timeout: float = 5.0
    shutdown_grace: float = 10.0
    reconnect_max_delay: float = 5.0
    db_acquire_timeout: float = 5.0
    # Pause before requeueing a message we could not park anywhere (broker trouble), so a
    # failing publisher does not turn into a hot redelivery loop.
    requeue_pause: float = 1.0
    # Send FulfilmentProgressed reports for booking events (off for the booking service's
    # own consumer of those reports).
    report_progress: bool = True
    # Seconds of simulated work per delivery (benchmarks, the seed latency profile). Spent
    # before the transaction opens, like a step's own slow work (rendering, remote calls),
    # so a slow step holds a message, not one of PostgreSQL's connections.
    simulated_work: float = 0.0
    # Deliveries recorded per transaction (shared/messaging/batching.py). Above 1 only for
    # handlers that write nothing but their own database: in a failed batch they run twice.
    batch_size: int = 1


class Consumer:
    def __init__(
        self,
        config: ConsumerConfig,
        handlers: Mapping[str, Handler],
        pool: asyncpg.Pool,
        publisher: ConfirmingPublisher,
        on_outbox_write: Callable[[], None] = lambda: None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.names = consumer_topology(config.service)
        self._handlers = dict(handlers)
        self._pool = pool
        self._parking = Parking(
            config.service, self.names, publisher, config.retry_policy, config.requeue_pause
        )
        self._on_outbox_write = on_outbox_write
        self._batch = (
            BatchRecorder(
                pool,
                config.service,
                self._handlers,
                lambda event, attempts: self._progress(event, "done", attempts, None),
                self._handle_once,
                on_outbox_write,
                self._count,
                max_size=config.batch_size,
                acquire_timeout=config.db_acquire_timeout,
            )
            if config.batch_size > 1
            else None
        )
        self._inflight: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._consuming = False
        # In-process tallies (tests read them); the same counts go to Prometheus.
        self.stats: Counter[str] = Counter()
        self.metrics = (metrics or Metrics()).for_queue(self.names.queue)

    @property
    def consuming(self) -> bool:
        """True while the subscription is live: set after basic.consume succeeded, cleared
        the moment the connection, the channel or the consumer itself is lost."""
        return self._consuming

    @consuming.setter
    def consuming(self, value: bool) -> None:
        self._consuming = value
        self.metrics.consuming(value)

    def _count(self, outcome: str) -> None:
        self.stats[outcome] += 1
        self.metrics.count(outcome)

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
            if not stop.is_set():
                await asyncio.wait([asyncio.ensure_future(stop.wait())], timeout=delay)
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
        acks = AckBatcher(await channel.get_underlay_channel(), self.names.queue)
        tag = await queue.consume(partial(self._on_message, acks=acks))
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

    async def _on_message(self, message: AbstractIncomingMessage, acks: AckBatcher) -> None:
        if self._stopping:
            return  # left unacked: requeued when the channel closes
        acks.delivered(message.delivery_tag)
        # The work is our own task, not the one aio-pika runs this callback in: those are
        # cancelled when their channel closes. The work (a transaction, an SMTP send) does
        # not need the broker, so it runs to its end; only the ack is lost, and the
        # redelivery is absorbed by the idempotency record. Cancelled midway, an email sent
        # but not yet recorded went out twice.
        work = asyncio.ensure_future(self._settle(message, acks))
        self._inflight.add(work)
        work.add_done_callback(self._inflight.discard)

    async def _settle(self, message: AbstractIncomingMessage, acks: AckBatcher) -> None:
        self._count("consumed")
        try:
            with delivery_scope(self.config.service, self.names.queue, message):
                await self.process(message, acks)
        except CONNECTION_ERRORS as exc:
            # Could not ack: the broker redelivers it and the idempotency record absorbs it.
            log.warning("%s: could not settle %s: %r", self.names.queue, message.message_id, exc)
        finally:
            if message.processed:  # parked: settled by its own ack or nack, not the batcher's
                acks.forget(message.delivery_tag)

    async def process(self, message: AbstractIncomingMessage, acks: AckBatcher) -> None:
        headers: dict[str, Any] = dict(message.headers or {})
        attempts = retry.attempts_so_far(headers) + 1
        try:
            event = decode_message(message, frozenset(self._handlers))
        except InvalidMessage as exc:
            await self._dead_letter(message, headers, exc, attempts, retry.REASON_INVALID)
            return
        except UnhandledEventType as exc:
            log.info("%s: acked without handling: %s", self.names.queue, exc)
            acks.ack(message.delivery_tag)
            self._count("ignored")
            return
        started = time.perf_counter()
        # x-attempts is the whole history; a replayed message's budget starts afresh.
        this_round = retry.attempts_since_replay(headers, attempts)
        try:
            if self.config.simulated_work:
                await asyncio.sleep(self.config.simulated_work)
            if self._batch is not None:
                await self._batch.record(event, attempts)
            else:
                await self._handle_once(event, attempts)
        except (PermanentError, InvalidMessage) as exc:
            await self._report(event, "failed", attempts, exc)
            await self._dead_letter(message, headers, exc, attempts, retry.REASON_PERMANENT)
        except Exception as exc:
            if self.config.retry_policy.exhausted(this_round):
                await self._report(event, "failed", attempts, exc)
                await self._dead_letter(message, headers, exc, attempts, retry.REASON_EXHAUSTED)
            else:
                await self._report(event, "retrying", attempts, exc)
                await self._retry(message, headers, exc, attempts, this_round)
        else:
            acks.ack(message.delivery_tag)
            self._count("acked")
        finally:
            self.metrics.handled_in(event.event_type, time.perf_counter() - started)

    async def _handle_once(self, event: Event, attempts: int) -> None:
        handler = self._handlers[event.event_type]
        schema = self.config.service
        async with acquire(self._pool, self.config.db_acquire_timeout) as tx, tx.transaction():
            # A concurrent duplicate blocks on this insert until we commit, then finds the row.
            claimed = await tx.fetchval(
                f'INSERT INTO "{schema}".processed_events (event_id, event_type, booking_id) '
                "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING true",
                event.event_id,
                event.event_type,
                event.booking_id,
            )
            if not claimed:
                log.info("%s: duplicate %s %s skipped", schema, event.event_type, event.event_id)
                self._count("duplicates")
                return
            emitted = list(await handler(event, tx) or [])
            progress = self._progress(event, "done", attempts, None)
            for new_event in [*emitted, *([progress] if progress else [])]:
                await add_to_outbox(tx, schema, new_event)
        self._on_outbox_write()

    def _progress(
        self, event: Event, status: StepStatus, attempts: int, error: BaseException | None
    ) -> FulfilmentProgressed | None:
        if not self.config.report_progress or event.event_type not in BOOKING_EVENTS:
            return None
        return FulfilmentProgressed(
            booking_id=event.booking_id,
            step=self.config.service,
            status=status,
            attempts=attempts,
            source_event_id=event.event_id,
            source_event_type=event.event_type,
            error=None if error is None else f"{type(error).__name__}: {error}"[:500],
        )

    async def _report(
        self, event: Event, status: StepStatus, attempts: int, error: BaseException
    ) -> None:
        """Best effort: a failure is often the database itself, and a missing report must
        not stop the message from being retried or parked."""
        progress = self._progress(event, status, attempts, error)
        if progress is None:
            return
        try:
            async with acquire(self._pool, self.config.db_acquire_timeout) as tx:
                await add_to_outbox(tx, self.config.service, progress)
        except Exception as exc:
            log.warning("%s: could not record %s progress: %r", self.names.queue, status, exc)
            return
        self._on_outbox_write()

    async def _retry(
        self,
        message: AbstractIncomingMessage,
        headers: dict[str, Any],
        error: Exception,
        attempts: int,
        this_round: int,
    ) -> None:
        if await self._parking.retry(message, headers, error, attempts, this_round):
            self._count("retried")

    async def _dead_letter(
        self,
        message: AbstractIncomingMessage,
        headers: dict[str, Any],
        error: Exception,
        attempts: int,
        reason: str,
    ) -> None:
        fail(trace.get_current_span(), error)
        if await self._parking.dead_letter(message, headers, error, attempts, reason):
            self.stats["dead_lettered"] += 1
            self.metrics.dead_lettered(reason)
