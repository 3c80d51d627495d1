"""Booking events for tests that publish straight to the broker."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from uuid import uuid4

from shared.db.pool import Connection
from shared.events import BookingConfirmed, Event

E = TypeVar("E", bound=Event)


def booking_facts(**overrides: Any) -> dict[str, Any]:
    """The fields of a booking event for a new booking id, with ``overrides`` applied."""
    fields: dict[str, Any] = {
        "booking_id": uuid4(),
        "hotel_id": 1,
        "hotel_name": "Hotel Aurora",
        "room_type": "standard",
        "check_in": date.today() + timedelta(days=10),
        "check_out": date.today() + timedelta(days=12),
        "nights": 2,
        "total_price": Decimal("240.00"),
        "currency": "EUR",
        "guest_name": "Ada Lovelace",
        "guest_email": "ada@example.com",
    }
    return fields | overrides


def booking_event(kind: type[E], **overrides: Any) -> E:
    return kind.model_validate(booking_facts(**overrides))


def confirmed(**overrides: Any) -> BookingConfirmed:
    return booking_event(BookingConfirmed, **overrides)


async def record_email(tx: Connection, event: BookingConfirmed) -> None:
    """The row the email service writes for a sent confirmation: a test handler's effect."""
    await tx.execute(
        "INSERT INTO email.emails (event_id, booking_id, kind, recipient, subject) "
        "VALUES ($1, $2, 'confirmation', $3, 'test')",
        event.event_id,
        event.booking_id,
        event.guest_email,
    )
