"""How an event travels: the AMQP message built around an event's JSON body, and what a
delivery must be before the runtime hands it to a handler."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, HeadersType

from shared.errors import InvalidMessage, MessageTooLarge
from shared.events import Event, decode_event
from shared.messaging.amqp_codec import PROPERTIES, damage, encodable_headers, short_string


def outbox_message(
    *,
    event_id: UUID,
    event_type: str,
    booking_id: UUID,
    occurred_at: datetime,
    body: bytes,
    headers: HeadersType | None = None,
    user_id: str | None = None,
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
        user_id=user_id,
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
    """The same body and properties with new headers, for retry, dead-letter and replay.

    Whatever a hostile publisher put in the original, the copy can be encoded: headers are
    made encodable, short strings cut to their 255 bytes (a name that was not UTF-8 grows
    when its bytes are replaced)."""
    return aio_pika.Message(
        expiration=expiration,
        body=message.body,
        message_id=_short(message.message_id),
        correlation_id=_short(message.correlation_id),
        type=_short(message.type),
        content_type=_short(message.content_type),
        content_encoding=_short(message.content_encoding),
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        timestamp=message.timestamp,
        headers=encodable_headers(headers),
    )


def _short(value: str | None) -> str | None:
    return None if value is None else short_string(str(value))


def decode_message(
    message: AbstractIncomingMessage, handled: frozenset[str], max_bytes: int | None = None
) -> Event:
    """Validate a delivery before any handler sees it. Raises InvalidMessage (MessageTooLarge
    for a body over ``max_bytes``) for anything that can never be handled, whatever the
    reason, and UnhandledEventType for a valid event this consumer does not handle.

    A message without a message_id, or one whose id differs from its event_id, could defeat
    idempotency, so it is as invalid as a body that is not JSON."""
    if max_bytes is not None and len(message.body) > max_bytes:
        raise MessageTooLarge(f"body of {len(message.body)} bytes is over the {max_bytes} limit")
    properties = {name: getattr(message, name, None) for name in PROPERTIES}
    problem = damage(message.headers, properties)
    if problem is not None:
        raise InvalidMessage(f"cannot be read faithfully: {problem}")
    if not message.message_id:
        raise InvalidMessage("message has no message_id")
    event = decode_event(message.body, handled)
    if str(event.event_id) != message.message_id:
        raise InvalidMessage(
            f"message_id {message.message_id!r} differs from event_id {event.event_id}"
        )
    return event
