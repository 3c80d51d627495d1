from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from aio_pika import IncomingMessage
from aiormq.abc import DeliveredMessage
from pamqp import commands as spec
from pamqp.header import ContentHeader
from pydantic import ValidationError

from shared.errors import InvalidMessage, UnhandledEventType
from shared.events import BookingConfirmed, decode_event
from shared.messaging.envelope import decode_message, event_message
from tests.support import events


def confirmed() -> BookingConfirmed:
    return events.confirmed(
        room_type="suite",
        check_in=date(2030, 1, 1),
        check_out=date(2030, 1, 3),
        total_price=Decimal("700.00"),
        guest_name="Ada",
    )


def delivered(body: bytes, message_id: str | None) -> IncomingMessage:
    """A real aio-pika IncomingMessage as the broker would hand it over."""
    properties = spec.Basic.Properties(message_id=message_id, content_type="application/json")
    message = DeliveredMessage(
        delivery=spec.Basic.Deliver(consumer_tag="t", delivery_tag=1, routing_key=""),
        header=ContentHeader(body_size=len(body), properties=properties),
        body=body,
        channel=None,  # type: ignore[arg-type]
    )
    return IncomingMessage(message, no_ack=True)


def test_an_event_survives_the_round_trip_through_json() -> None:
    event = confirmed()
    decoded = decode_event(event.to_json())
    assert decoded == event
    assert json.loads(event.to_json())["event_type"] == "BookingConfirmed"


def test_every_event_carries_id_time_version_and_is_frozen() -> None:
    event = confirmed()
    assert event.version == 1
    assert event.occurred_at.tzinfo is not None
    with pytest.raises(ValidationError):
        event.nights = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"version": 1}', "no string event_type"),
        (b'{"event_type": "BookingConfirmed", "version": 7}', "unknown version 7"),
        (b'{"event_type": "BookingConfirmed", "version": 1}', "does not match its schema"),
    ],
)
def test_bodies_that_can_never_be_handled_are_invalid_with_a_reason(
    body: bytes, reason: str
) -> None:
    with pytest.raises(InvalidMessage, match=reason):
        decode_event(body)


def test_an_event_type_outside_the_handled_set_is_unhandled_not_invalid() -> None:
    with pytest.raises(UnhandledEventType):
        decode_event(b'{"event_type": "RoomRepainted", "version": 1}')
    with pytest.raises(UnhandledEventType):
        decode_event(confirmed().to_json(), handled=frozenset({"BookingCancelled"}))


def test_fields_added_by_a_newer_producer_are_ignored() -> None:
    raw: dict[str, Any] = json.loads(confirmed().to_json())
    raw["loyalty_tier"] = "gold"
    assert decode_event(json.dumps(raw).encode()).event_type == "BookingConfirmed"


def test_a_message_without_message_id_is_invalid() -> None:
    event = confirmed()
    with pytest.raises(InvalidMessage, match="no message_id"):
        decode_message(delivered(event.to_json(), None), frozenset({"BookingConfirmed"}))
    ok = decode_message(
        delivered(event.to_json(), str(event.event_id)), frozenset({"BookingConfirmed"})
    )
    assert ok == event


def test_the_amqp_message_carries_the_event_identity_in_its_properties() -> None:
    event = confirmed()
    message = event_message(event)
    assert message.message_id == str(event.event_id)
    assert message.correlation_id == str(event.booking_id)
    assert message.type == "BookingConfirmed"
    assert message.content_type == "application/json"
    assert message.delivery_mode == 2
    assert message.timestamp == event.occurred_at
