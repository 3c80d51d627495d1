"""The transactional outbox: events written in the same transaction as the change that
caused them, and the relay that publishes them to a fanout exchange.

A row is marked published only after the broker confirmed its message, so a crash or a
broker outage leaves it for the next pass (at-least-once; consumers deduplicate by
event_id). Rows are claimed with FOR UPDATE SKIP LOCKED, so any number of replicas
can relay side by side without publishing a row twice in the normal case.

Each row keeps the W3C ``traceparent`` of the transaction that wrote it; the relay publishes
it in a producer span whose context travels in the message's ``traceparent`` header, so the
consumers' spans join the trace of the request that caused the event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aio_pika
import asyncpg
from opentelemetry.trace import Span, SpanKind

from shared.db.pool import UNAVAILABLE_ERRORS, Connection, acquire
from shared.errors import DatabaseUnavailable, MessagingError
from shared.events import Event
from shared.logging_setup import message_context
from shared.messaging.envelope import outbox_message
from shared.messaging.publisher import ConfirmingPublisher
from shared.observability.metrics import Metrics
from shared.observability.tracing import (
    context_from,
    current_traceparent,
    fail,
    headers_for,
    tracer,
)
from shared.waiting import first_of

log = logging.getLogger(__name__)
LOGGED_FAILURES = 3  # rows of a batch whose failure is logged one by one, with their ids
DB_FAILURES: tuple[type[BaseException], ...] = (
    DatabaseUnavailable,
    asyncpg.PostgresError,
    *UNAVAILABLE_ERRORS,
)


# What one event stores in a service's outbox table; see :func:`outbox_values`.
OUTBOX_COLUMNS = "event_id, event_type, booking_id, occurred_at, body, traceparent"


def outbox_values(event: Event, *, traceparent: str | None = None) -> tuple[Any, ...]:
    """The values of :data:`OUTBOX_COLUMNS` for ``event``, for a statement that writes the
    row along with other changes (one round trip instead of two). The trace context is the
    current one unless ``traceparent`` is given."""
    return (
        event.event_id,
        event.event_type,
        event.booking_id,
        event.occurred_at,
        event.to_json().decode(),
        traceparent or current_traceparent(),
    )


def outbox_insert(schema: str) -> str:
    """The INSERT of one outbox row, its parameters :func:`outbox_values` (``execute`` for
    one event, ``executemany`` for several)."""
    return f'INSERT INTO "{schema}".outbox ({OUTBOX_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)'


async def add_to_outbox(conn: Connection, schema: str, event: Event) -> None:
    await conn.execute(outbox_insert(schema), *outbox_values(event))


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: ConfirmingPublisher,
        *,
        schema: str,
        exchange: str,
        batch_size: int = 200,
        sweep_interval: float = 1.0,
        retry_max_delay: float = 5.0,
        acquire_timeout: float = 5.0,
        metrics: Metrics | None = None,
        user_id: str | None = None,
    ) -> None:
        self._pool = pool
        # Set on every message as its AMQP user_id: the broker refuses it unless it is the
        # connection's user, so a consumer can tell who published (services/booking/senders.py).
        self._user_id = user_id
        self._publisher = publisher
        self._schema = schema
        self._exchange = exchange
        self._batch_size = batch_size
        self._sweep_interval = sweep_interval
        self._retry_max_delay = retry_max_delay
        self._acquire_timeout = acquire_timeout
        self._wakeup = asyncio.Event()
        self.published = 0
        self._published_metric = (metrics or Metrics()).events_published.labels(outbox=schema)

    def wake(self) -> None:
        """Called after a commit: publish now rather than at the next sweep."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            # Connecting declares the topology, so consumers' queues exist (and collect
            # events) even before any consumer has ever started.
            await self._publisher.connect()
        except MessagingError as exc:
            log.warning("outbox relay %s: broker unavailable at start-up: %s", self._schema, exc)
        delay = 0.1
        while not stop.is_set():
            self._wakeup.clear()  # before reading, so a commit during the pass is not missed
            try:
                published, failed = await self.relay_once()
            except MessagingError as exc:
                published, failed = 0, 1
                log.warning("outbox relay %s: broker unavailable: %s", self._schema, exc)
            except DB_FAILURES as exc:
                published, failed = 0, 1
                log.warning("outbox relay %s: database unavailable: %r", self._schema, exc)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise  # the relay itself is being cancelled
                # A cancellation from inside the client library (a future of a connection
                # that died under us), not aimed at the relay: a failure like any other.
                published, failed = 0, 1
                log.warning("outbox relay %s: broker operation cancelled; will retry", self._schema)
            except Exception:
                # The relay runs as a background task nobody awaits until shutdown: if it died,
                # its outbox would silently stop draining. Anything unforeseen is logged with
                # its traceback and retried like any other failure.
                published, failed = 0, 1
                log.exception("outbox relay %s: unexpected error; will retry", self._schema)
            if failed:
                await self._sleep(stop, delay)
                delay = min(delay * 2, self._retry_max_delay)
                continue
            delay = 0.1
            if published < self._batch_size:  # a full batch means more may be waiting
                await self._sleep(stop, self._sweep_interval, wake_early=True)
        # One last pass, so what was committed just before the stop leaves now.
        with contextlib.suppress(MessagingError, *DB_FAILURES):
            await self.relay_once()

    async def _sleep(self, stop: asyncio.Event, seconds: float, wake_early: bool = False) -> None:
        await first_of(stop, *([self._wakeup] if wake_early else []), timeout=seconds)

    async def relay_once(self) -> tuple[int, int]:
        """Publish one batch; return (published, failed)."""
        async with acquire(self._pool, self._acquire_timeout) as conn, conn.transaction():
            rows = await conn.fetch(
                f"""SELECT id, event_id, event_type, booking_id, occurred_at, body, traceparent
                    FROM "{self._schema}".outbox WHERE published_at IS NULL
                    ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
                self._batch_size,
            )
            if not rows:
                return 0, 0
            spans = [self._span(row) for row in rows]
            messages = [
                _message(row, headers_for(span), self._user_id)
                for row, span in zip(rows, spans, strict=True)
            ]
            try:
                results = await self._publisher.publish_many(
                    messages, exchange=self._exchange, routing_key=""
                )
            except BaseException as exc:  # no channel at all: end the spans as failed
                for span in spans:
                    fail(span, exc)
                    span.end()
                raise
            logged = 0
            for row, span, error in zip(rows, spans, results, strict=True):
                if error is not None:
                    fail(span, error)
                    if logged < LOGGED_FAILURES:  # a failing batch needs a few lines, not 200
                        logged += 1
                        with message_context(
                            event_id=row["event_id"],
                            booking_id=row["booking_id"],
                            correlation_id=row["booking_id"],
                        ):
                            log.warning("outbox relay %s: not confirmed: %s", self._schema, error)
                span.end()
            done = [row["id"] for row, error in zip(rows, results, strict=True) if error is None]
            failures = [
                (row["id"], str(error))
                for row, error in zip(rows, results, strict=True)
                if error is not None
            ]
            if done:
                await conn.execute(
                    f'UPDATE "{self._schema}".outbox SET published_at = now(), '
                    "publish_attempts = publish_attempts + 1 WHERE id = ANY($1::bigint[])",
                    done,
                )
            if failures:
                await conn.executemany(
                    f'UPDATE "{self._schema}".outbox SET publish_attempts = publish_attempts + 1, '
                    "last_error = $2 WHERE id = $1",
                    failures,
                )
                log.warning(
                    "outbox relay %s: %d of %d events not confirmed; will retry",
                    self._schema,
                    len(failures),
                    len(rows),
                )
        self.published += len(done)
        self._published_metric.inc(len(done))
        return len(done), len(failures)

    def _span(self, row: asyncpg.Record) -> Span:
        """A producer span, child of the span that wrote the row."""
        return tracer().start_span(
            f"{self._exchange} publish",
            context=context_from({"traceparent": row["traceparent"]}),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "publish",
                "messaging.destination.name": self._exchange,
                "messaging.message.id": str(row["event_id"]),
                "messaging.message.conversation_id": str(row["booking_id"]),
            },
        )


def _message(row: asyncpg.Record, headers: dict[str, str], user_id: str | None) -> aio_pika.Message:
    return outbox_message(
        event_id=row["event_id"],
        event_type=row["event_type"],
        booking_id=row["booking_id"],
        occurred_at=row["occurred_at"],
        body=row["body"].encode(),
        headers=dict(headers),
        user_id=user_id,
    )
