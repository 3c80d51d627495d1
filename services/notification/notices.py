"""What a notification says about a booking event: one text for the feed and the push."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from shared.events import BookingCancelled, BookingConfirmed

BookingEvent: TypeAlias = BookingConfirmed | BookingCancelled


@dataclass(frozen=True)
class Notice:
    # ASCII only: the title travels in an HTTP header.
    title: str
    message: str
    tags: tuple[str, ...]


def notice_for(event: BookingEvent) -> Notice:
    stay = f"{event.hotel_name}, {event.check_in} to {event.check_out}"
    if isinstance(event, BookingCancelled):
        return Notice("Booking cancelled", f"Booking cancelled: {stay}", ("x", "hotel"))
    return Notice("Booking confirmed", f"Booking confirmed: {stay}", ("white_check_mark", "hotel"))
