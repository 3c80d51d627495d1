"""Booking events for tests that publish straight to the broker."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from uuid import uuid4

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
