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

Alongside: the handlers' types (handlers.py), the subscription that brings deliveries in
(subscription.py), the progress reports (progress.py), where failed deliveries go
(parking.py), batched records (batching.py) and coalesced acks (acks.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg
from aio_pika.abc import AbstractIncomingMessage
from opentelemetry import trace

from shared.db.pool import acquire_patiently
from shared.errors import (
    ConfigurationError,
    InvalidMessage,
    MessageTooLarge,
    PermanentError,
    UnhandledEventType,
    WrongSender,
)
from shared.events import Event
from shared.messaging import inbox, retry
from shared.messaging.acks import AckBatcher
from shared.messaging.batching import BatchRecorder
from shared.messaging.config import ConsumerConfig
from shared.messaging.connection import CONNECTION_ERRORS
from shared.messaging.envelope import decode_message
from shared.messaging.handlers import Handler
from shared.messaging.parking import Parking
from shared.messaging.progress import ProgressReports
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.subscription import Subscription
from shared.messaging.topology import consumer_topology
from shared.observability.metrics import Metrics
from shared.observability.tracing import delivery_scope, fail
from shared.outbox.rows import OutboxRow, write_rows

log = logging.getLogger(__name__)


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
        if config.batch_size > 1 and any(h.prepares for h in self._handlers.values()):
            # A prepare step holds something outside the database (an SMTP connection): the
            # kind of handler a rolled-back batch would run twice.
            raise ConfigurationError(f"{config.service}: prepared handlers cannot be batched")
        self._pool = pool
        self._parking = Parking(
            config.service, self.names, publisher, config.retry_policy, config.requeue_pause
        )
        self._on_outbox_write = on_outbox_write
        self._progress = ProgressReports(
            config.service,
            config.report_progress,
            pool,
            config.db_acquire_timeout,
            on_outbox_write,
            self.names.queue,
        )
        self._batch = (
            BatchRecorder(
                pool,
                config.service,
                self._handlers,
                self._progress.done,
                self._handle_once,
                on_outbox_write,
                self._count,
                max_size=config.batch_size,
                linger=config.batch_linger,
                acquire_timeout=config.db_acquire_timeout,
            )
            if config.batch_size > 1
            else None
        )
        # In-process tallies (tests read them); the same counts go to Prometheus.
        self.stats: Counter[str] = Counter()
        self.metrics = (metrics or Metrics()).for_queue(self.names.queue)
        self._subscription = Subscription(config, self.names, self.metrics, self._settle)

    @property
    def consuming(self) -> bool:
        """True while the subscription is live (see Subscription.consuming)."""
        return self._subscription.consuming

    def stalled(self) -> str | None:
        """Why the deliveries in hand stopped moving (held past STALL_TIMEOUT), or None."""
        return self._subscription.held.stalled(self.config.stall_timeout)

    def _count(self, outcome: str) -> None:
        self.stats[outcome] += 1
        self.metrics.count(outcome)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, reconnecting whenever the connection or channel is
        lost. Returns after a graceful drain."""
        try:
            await self._subscription.run(stop)
        finally:
            # Its deliveries are settled or given up by now: a batch still in progress must
            # not hold a connection of the pool that is about to close.
            if self._batch is not None:
                await self._batch.close()

    async def _settle(self, message: AbstractIncomingMessage, acks: AckBatcher) -> None:
        self._count("consumed")
        try:
            with delivery_scope(self.config.service, self.names.queue, message):
                try:
                    await self.process(message, acks)
                except CONNECTION_ERRORS:
                    raise
                except Exception as exc:
                    await self._refuse(message, exc)
        except CONNECTION_ERRORS as exc:
            # Could not ack: the broker redelivers it and the idempotency record absorbs it.
            log.warning("%s: could not settle %s: %r", self.names.queue, message.message_id, exc)
        finally:
            if message.processed:  # parked: settled by its own ack or nack, not the batcher's
                acks.forget(message.delivery_tag)

    async def _refuse(self, message: AbstractIncomingMessage, error: Exception) -> None:
        """A failure outside any handler (decoding, validating, settling; a bug of ours or a
        message nobody foresaw): this message's permanent failure. Never held: a message
        left unacked keeps a prefetch slot, and enough of them stop the consumer."""
        log.error(
            "%s: cannot process %s; dead-lettering it",
            self.names.queue,
            message.message_id,
            exc_info=error,
        )
        if message.processed:  # it was settled before the failure: nothing is held
            return
        headers = dict(message.headers or {})
        attempts = retry.attempts_so_far(headers) + 1
        try:
            await self._dead_letter(message, headers, error, attempts, retry.REASON_PERMANENT)
        except CONNECTION_ERRORS:
            raise
        except Exception as again:  # even parking fails: the broker's dead-lettering takes it
            log.error(
                "%s: cannot park %s either", self.names.queue, message.message_id, exc_info=again
            )
            if not message.processed:
                await message.reject(requeue=False)

    async def process(self, message: AbstractIncomingMessage, acks: AckBatcher) -> None:
        headers: dict[str, Any] = dict(message.headers or {})
        attempts = retry.attempts_so_far(headers) + 1
        try:
            event = decode_message(
                message, frozenset(self._handlers), self.config.max_message_bytes
            )
        except MessageTooLarge as exc:
            await self._dead_letter(message, headers, exc, attempts, retry.REASON_TOO_LARGE)
            return
        except InvalidMessage as exc:
            await self._dead_letter(message, headers, exc, attempts, retry.REASON_INVALID)
            return
        except UnhandledEventType as exc:
            log.info("%s: acked without handling: %s", self.names.queue, exc)
            acks.ack(message.delivery_tag)
            self._count("ignored")
            return
        check = self.config.check_sender
        if check is not None and (problem := check(event, message)) is not None:
            error = WrongSender(problem)
            await self._dead_letter(message, headers, error, attempts, retry.REASON_WRONG_SENDER)
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
            await self._progress.record(event, "failed", attempts, exc)
            await self._dead_letter(message, headers, exc, attempts, retry.REASON_PERMANENT)
        except Exception as exc:
            if self.config.retry_policy.exhausted(this_round):
                await self._progress.record(event, "failed", attempts, exc)
                await self._dead_letter(message, headers, exc, attempts, retry.REASON_EXHAUSTED)
            else:
                await self._progress.record(event, "retrying", attempts, exc)
                await self._retry(message, headers, exc, attempts, this_round)
        else:
            acks.ack(message.delivery_tag)
            self._count("acked")
        finally:
            self.metrics.handled_in(event.event_type, time.perf_counter() - started)

    async def _handle_once(self, event: Event, attempts: int) -> None:
        handler = self._handlers[event.event_type]
        schema = self.config.service
        # Prepared first (an email rendered, an SMTP connection taken): no database connection
        # is held while waiting for those. Waiting for a pool connection counts as no attempt.
        # The transaction takes two round trips (shared/messaging/inbox.py).
        async with (
            handler.prepare(event) as ready,
            acquire_patiently(
                self._pool, self.config.db_acquire_timeout, on_wait=self._pool_busy
            ) as tx,
        ):
            try:
                if not await inbox.begin_and_claim(tx, schema, event):
                    await inbox.commit(tx, schema)
                    log.info(
                        "%s: duplicate %s %s skipped", schema, event.event_type, event.event_id
                    )
                    self._count("duplicates")
                    return
                handled = await handler.handle(event, tx, ready) or []
                emitted, progress = self._progress.done(event, handled, attempts)
                await write_rows(tx, schema, [OutboxRow.of(new) for new in emitted])
                await inbox.commit(tx, schema, [OutboxRow.of(progress)] if progress else [])
            except BaseException:
                await inbox.rollback(tx)
                raise
        if emitted or progress:  # else the relay has nothing to send
            self._on_outbox_write()

    def _pool_busy(self) -> None:
        log.info("%s: every database connection is in use; waiting", self.names.queue)

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
