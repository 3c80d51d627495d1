"""Several deliveries recorded in one transaction, for consumers whose handlers only write
to their own database (the booking service's fulfilment reports; ``ConsumerConfig.batch_size``).

Per message, the runtime's transaction is two round trips (BEGIN with the claim in
``processed_events``, the outbox row of its progress report with COMMIT: inbox.py); under
load that, not the handler, bounds a consumer. Here the deliveries that are ready in the same
loop turn share one transaction, or those that come within ``linger`` of the first, when
it is set (until the batch is full)::

    BEGIN
    INSERT INTO processed_events SELECT unnest(ids ...) ON CONFLICT DO NOTHING RETURNING id
    handler(event, tx) for each event claimed, in delivery order (a handler with a batch
      form: once for all the events of its type, in delivery order)
    INSERT INTO outbox ... (every event they emitted, and their reports: one pipelined batch)
    COMMIT ──► every delivery of the batch is acked

If anything fails (a handler raises, the commit fails), the whole transaction rolls back and
each delivery of the batch is handled again **on its own** (the ordinary path, a few at a
time, each in its own delivery's trace and log context), so one bad message decides only
its own fate: retried or dead-lettered like any other. A handler may therefore run twice
for the same event, once in the rolled-back batch, which is invisible for database-only
handlers and **wrong for handlers with outside effects** (an email, a
webhook): those consumers keep ``batch_size`` at 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import asyncpg

from shared.db.pool import acquire
from shared.errors import TransientError
from shared.events import Event
from shared.logging_setup import message_context
from shared.messaging.handlers import Handler
from shared.observability.tracing import current_traceparent
from shared.outbox.rows import OutboxRow, write_rows

log = logging.getLogger(__name__)

# The fallback's transactions in progress at once. Each takes a pool connection of its own,
# from a pool the consumer shares (the booking service's report consumer: with its API, 20
# connections, batches of 50): all of a batch at once would starve the rest of the process.
# Not one at a time either: no later batch starts until the fallback is over, so one slow
# transaction (a duplicate blocked on a concurrent claim, a wait for a connection of up to
# acquire_timeout) would hold every delivery behind it. Four keeps the batch's failure to a
# fifth of the booking pool while the others go on.
FALLBACK_CONCURRENCY = 4


@dataclass
class _Delivery:
    event: Event
    attempts: int
    traceparent: str | None  # of the delivery's span: its emitted events join its trace
    done: asyncio.Future[None]
    # The delivery's own context (its span, its log fields): its fallback runs in it.
    context: contextvars.Context
    duplicate: bool = field(default=False)


@dataclass
class BatchRecorder:
    pool: asyncpg.Pool
    schema: str
    handlers: Mapping[str, Handler]
    # What handling an event sends: its handler's events and its FulfilmentProgressed(done)
    # report, or None (ProgressReports.done).
    progress: Callable[[Event, Sequence[Event], int], tuple[list[Event], Event | None]]
    # The ordinary one-transaction-per-delivery path, for the fallback.
    handle_one: Callable[[Event, int], Awaitable[None]]
    on_commit: Callable[[], None]
    count: Callable[[str], None]
    max_size: int = 50
    acquire_timeout: float = 5.0
    linger: float = 0.0  # seconds a batch not yet full waits for more deliveries
    _waiting: list[_Delivery] = field(default_factory=list)
    _full: asyncio.Event = field(default_factory=asyncio.Event)
    _running: asyncio.Task[None] | None = None

    async def record(self, event: Event, attempts: int) -> None:
        """Return once ``event`` is committed (or raise what its own retry raised)."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        context = contextvars.copy_context()
        self._waiting.append(_Delivery(event, attempts, current_traceparent(), done, context))
        if len(self._waiting) >= self.max_size:
            self._full.set()
        if self._running is None:
            # Started, not run: it begins after this loop turn, with what else came in it.
            # In a context of its own: it works for every delivery, not for the one that
            # happened to start it (whose trace and log fields it would otherwise carry).
            self._running = loop.create_task(self._record_waiting(), context=contextvars.Context())
            self._running.add_done_callback(self._if_never_started)
        await done

    def _if_never_started(self, task: asyncio.Task[None]) -> None:
        # A task cancelled before its first step never enters _record_waiting, nor its
        # finally: still ``_running`` then, it would hold its deliveries (and every later
        # one, as no new task would start) forever.
        if self._running is task:
            self._running = None
            self._interrupt([])

    async def close(self) -> None:
        """Cancel the batch in progress and wait until it has let go of its connection (the
        consumer has stopped: its deliveries were given their grace period and are left for
        redelivery). Whoever still waits on it gets the TransientError of ``_interrupt``."""
        task = self._running
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def _record_waiting(self) -> None:
        batch: list[_Delivery] = []
        try:
            while self._waiting:
                await self._fill()
                batch = self._waiting[: self.max_size]
                del self._waiting[: self.max_size]
                await self._record_batch(batch)
        finally:
            self._running = None
            self._interrupt(batch)

    async def _fill(self) -> None:
        """Wait up to ``linger`` for a full batch: deliveries that trickle in, a few at a
        time, would otherwise each pay a transaction of their own."""
        if self.linger > 0 and len(self._waiting) < self.max_size:
            self._full.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.linger):
                    await self._full.wait()

    def _interrupt(self, batch: list[_Delivery]) -> None:
        # Only if this task itself was cancelled or failed past its own handling: no
        # delivery may wait for a batch that will never settle it.
        # Each then takes the ordinary retry path.
        interrupted = TransientError(f"{self.schema}: batch recording was interrupted")
        for delivery in [*batch, *self._waiting]:
            _settle(delivery.done, interrupted)
        self._waiting.clear()

    async def _record_batch(self, batch: list[_Delivery]) -> None:
        try:
            wrote = await self._in_one_transaction(batch)
        except Exception as exc:
            if len(batch) > 1:
                log.info("%s: batch of %d failed (%r); one by one", self.schema, len(batch), exc)
            slots = asyncio.Semaphore(FALLBACK_CONCURRENCY)
            # Each in its own delivery's context: its outbox rows join its trace, its log
            # lines carry its ids.
            alone = [asyncio.create_task(self._alone(d, slots), context=d.context) for d in batch]
            results = await asyncio.gather(*alone, return_exceptions=True)
            for delivery, result in zip(batch, results, strict=True):
                _settle(delivery.done, result)
            return
        if wrote:  # a relay woken for an empty outbox costs a claim statement for nothing
            self.on_commit()
        for delivery in batch:
            if delivery.duplicate:
                log.info("%s: duplicate %s skipped", self.schema, delivery.event.event_id)
                self.count("duplicates")
            _settle(delivery.done, None)

    async def _alone(self, delivery: _Delivery, slots: asyncio.Semaphore) -> None:
        async with slots:
            await self.handle_one(delivery.event, delivery.attempts)

    async def _in_one_transaction(self, batch: list[_Delivery]) -> bool:
        """Records ``batch`` in one transaction; whether it wrote outbox rows."""
        # Claimed in event_id order, so two batches holding the same ids cannot deadlock.
        ordered = sorted({d.event.event_id: d.event for d in batch}.values(), key=_event_id)
        rows: list[OutboxRow] = []
        async with acquire(self.pool, self.acquire_timeout) as tx, tx.transaction():
            claimed = {
                row["event_id"]
                for row in await tx.fetch(
                    f'INSERT INTO "{self.schema}".processed_events '
                    "(event_id, event_type, booking_id) "
                    "SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[]) "
                    "ON CONFLICT DO NOTHING RETURNING event_id",
                    [e.event_id for e in ordered],
                    [e.event_type for e in ordered],
                    [e.booking_id for e in ordered],
                )
            }
            together: dict[str, list[Event]] = {}
            for delivery in batch:
                event = delivery.event
                if event.event_id not in claimed:
                    delivery.duplicate = True
                    continue
                claimed.discard(event.event_id)  # a second copy in this batch is a duplicate
                handler = self.handlers[event.event_type]
                emitted: list[Event] = []
                if handler.handle_batch is not None:
                    together.setdefault(event.event_type, []).append(event)
                else:
                    # Its own ids on the handler's log lines (the batch task has none).
                    with message_context(
                        event_id=event.event_id,
                        booking_id=event.booking_id,
                        correlation_id=event.booking_id,
                    ):
                        emitted = list(await handler.handle(event, tx, None) or [])
                emitted, report = self.progress(event, emitted, delivery.attempts)
                for new in [*emitted, *([report] if report else [])]:
                    rows.append(OutboxRow.of(new, traceparent=delivery.traceparent))
            for event_type, events in together.items():
                handle_batch = self.handlers[event_type].handle_batch
                assert handle_batch is not None
                await handle_batch(events, tx)
            await write_rows(tx, self.schema, rows)
        return bool(rows)


def _event_id(event: Event) -> str:
    return str(event.event_id)


def _settle(done: asyncio.Future[None], result: BaseException | None) -> None:
    if done.done():  # its waiter was cancelled (shutdown past the grace period)
        return
    if isinstance(result, BaseException):
        done.set_exception(result)
    else:
        done.set_result(None)
