"""Booking bodies and BookingConfirmed messages for the load generators and queue fills."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import aio_pika

from shared.events import BookingConfirmed
from shared.messaging.envelope import event_message

# The demo hotels' room types (services/booking/migrations/002_demo_hotels.sql): spreading
# bookings over them and over 600 nights keeps row locks on room_nights apart.
ROOM_TYPES = (
    (1, "standard"),
    (1, "deluxe"),
    (1, "suite"),
    (2, "standard"),
    (2, "family"),
    (3, "standard"),
    (3, "deluxe"),
)
NIGHTS_SPREAD = 600


def booking_body(i: int) -> dict[str, Any]:
    hotel_id, room_type = ROOM_TYPES[i % len(ROOM_TYPES)]
    check_in = date.today() + timedelta(days=10 + (i // len(ROOM_TYPES)) % NIGHTS_SPREAD)
    return {
        "hotel_id": hotel_id,
        "room_type": room_type,
        "check_in": check_in.isoformat(),
        "check_out": (check_in + timedelta(days=1)).isoformat(),
        "guest_name": "Bench Guest",
        "guest_email": f"guest{i}@example.com",
    }


def confirmed(i: int = 0) -> BookingConfirmed:
    check_in = date.today() + timedelta(days=30)
    return BookingConfirmed(
        booking_id=uuid4(),
        hotel_id=1,
        hotel_name="Hotel Aurora",
        room_type="standard",
        check_in=check_in,
        check_out=check_in + timedelta(days=1),
        nights=1,
        total_price=Decimal("120.00"),
        currency="EUR",
        guest_name="Bench Guest",
        guest_email=f"guest{i}@example.com",
    )


def confirmed_messages(count: int, headers: dict[str, Any] | None = None) -> list[aio_pika.Message]:
    return [event_message(confirmed(i), headers=headers) for i in range(count)]
