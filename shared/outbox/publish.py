"""A relay pass's broker step: publish a claimed batch, pipelined on one confirm channel, and
say per row whether the broker confirmed it.

Each row is published in a producer span, child of the span that wrote the row (its
``traceparent`` column); the span's context travels in the message's ``traceparent`` header,
so the consumers' spans join the trace of the request that caused the event. When no spans
are recorded (``OTEL_TRACES_EXPORTER=none``), the row's context travels on as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import aio_pika
import asyncpg
from opentelemetry.trace import Span, SpanKind

from shared.errors import MessagingError
from shared.logging_setup import message_context
from shared.messaging.envelope import outbox_message
from shared.messaging.publisher import ConfirmingPublisher
from shared.observability.tracing import (
    context_from,
    fail,
    headers_for,
    passed_on,
    recording,
    tracer,
)

log = logging.getLogger(__name__)
LOGGED_FAILURES = 3  # rows of a batch whose failure is logged one by one, with their ids


async def publish_batch(
    publisher: ConfirmingPublisher,
    rows: Sequence[asyncpg.Record],
    *,
    exchange: str,
    user_id: str | None,
    outbox: str,
) -> list[MessagingError | None]:
    """Per row, None when the broker confirmed its message, else why not. Raises
    (BrokerUnavailable, ...) when there is no channel to publish on at all."""
    if recording():
        errors = await _publish_in_spans(publisher, rows, exchange, user_id)
    else:
        # No spans are recorded: each message carries its row's trace context on, as the
        # producer span would have, without building a span nobody records.
        messages = [_message(row, passed_on(row["traceparent"]), user_id) for row in rows]
        errors = await publisher.publish_many(messages, exchange=exchange, routing_key="")
    _log_failures(outbox, rows, errors)
    return errors


async def _publish_in_spans(
    publisher: ConfirmingPublisher,
    rows: Sequence[asyncpg.Record],
    exchange: str,
    user_id: str | None,
) -> list[MessagingError | None]:
    with producer_spans(rows, exchange) as spans:
        messages = [
            _message(row, headers_for(span), user_id) for row, span in zip(rows, spans, strict=True)
        ]
        errors = await publisher.publish_many(messages, exchange=exchange, routing_key="")
        for span, error in zip(spans, errors, strict=True):
            if error is not None:
                fail(span, error)
    return errors


@contextmanager
def producer_spans(rows: Sequence[asyncpg.Record], exchange: str) -> Iterator[list[Span]]:
    """One producer span per row, ended on the way out; all failed with the exception when
    the block raises (nothing was published)."""
    spans = [_span(row, exchange) for row in rows]
    try:
        yield spans
    except BaseException as exc:
        for span in spans:
            fail(span, exc)
        raise
    finally:
        for span in spans:
            span.end()


def _span(row: asyncpg.Record, exchange: str) -> Span:
    return tracer().start_span(
        f"{exchange} publish",
        context=context_from({"traceparent": row["traceparent"]}),
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "rabbitmq",
            "messaging.operation.type": "publish",
            "messaging.destination.name": exchange,
            "messaging.message.id": str(row["event_id"]),
            "messaging.message.conversation_id": str(row["booking_id"]),
        },
    )


def _message(row: asyncpg.Record, headers: dict[str, str], user_id: str | None) -> aio_pika.Message:
    # user_id: the broker refuses it unless it is the connection's user, so a consumer can
    # tell who published (services/booking/senders.py).
    return outbox_message(
        event_id=row["event_id"],
        event_type=row["event_type"],
        booking_id=row["booking_id"],
        occurred_at=row["occurred_at"],
        body=row["body"].encode(),
        headers=dict(headers),
        user_id=user_id,
    )


def _log_failures(
    outbox: str, rows: Sequence[asyncpg.Record], errors: Sequence[MessagingError | None]
) -> None:
    """A few lines for a failing batch, not one per row: the first rows with their ids, then
    the count."""
    failed = [(row, error) for row, error in zip(rows, errors, strict=True) if error is not None]
    for row, error in failed[:LOGGED_FAILURES]:
        with message_context(
            event_id=row["event_id"], booking_id=row["booking_id"], correlation_id=row["booking_id"]
        ):
            log.warning("outbox relay %s: not confirmed: %s", outbox, error)
    if failed:
        log.warning(
            "outbox relay %s: %d of %d events not confirmed; will retry",
            outbox,
            len(failed),
            len(rows),
        )
