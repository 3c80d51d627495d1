"""How an event travels: the AMQP message built around an event's JSON body."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, HeadersType

from shared.errors import InvalidMessage
from shared.events import Event, decode_event


def outbox_message(
    *,
    event_id: UUID,
    event_type: str,
    booking_id: UUID,
    occurred_at: datetime,
    body: bytes,
    headers: HeadersType | None = None,
) -> aio_pika.Message:
    return aio_pika.Message(
        body=body,
        message_id=str(event_id),
        correlation_id=str(booking_id),
        type=event_type,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        timestamp=occurred_at,
        headers=headers or {},
    )


def event_message(event: Event, headers: HeadersType | None = None) -> aio_pika.Message:
    return outbox_message(
        event_id=event.event_id,
        event_type=event.event_type,
        booking_id=event.booking_id,
        occurred_at=event.occurred_at,
        body=event.to_json(),
        headers=headers,
    )


def copy_message(
    message: AbstractIncomingMessage, headers: dict[str, Any], expiration: float | None = None
) -> aio_pika.Message:
    """The same body and properties with new headers, for retry, dead-letter and replay."""
    return aio_pika.Message(
        expiration=expiration,
        body=message.body,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        type=message.type,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        timestamp=message.timestamp,
        headers=headers,
    )


def decode_message(message: AbstractIncomingMessage, handled: frozenset[str]) -> Event:
    """Validate a delivery: a message without a message_id, or one whose id differs from its
    event_id, could defeat idempotency, so it is as invalid as a body that is not JSON."""
    if not message.message_id:
        raise InvalidMessage("message has no message_id")
    event = decode_event(message.body, handled)
    if str(event.event_id) != message.message_id:
        raise InvalidMessage(
            f"message_id {message.message_id!r} differs from event_id {event.event_id}"
        )
    return event
