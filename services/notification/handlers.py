"""Notification handlers: plain async functions of (event, transaction, named dependencies).

This step records each notification in the booking's feed; webhooks and push build on it.
"""

from __future__ import annotations

import asyncio

from shared.db.pool import Connection
from shared.events import BookingConfirmed


async def notify_confirmed(
    event: BookingConfirmed, tx: Connection, *, simulated_latency: float = 0.0
) -> None:
    if simulated_latency:
        await asyncio.sleep(simulated_latency)
    await tx.execute(
        "INSERT INTO notification.notifications (event_id, booking_id, event_type, message) "
        "VALUES ($1, $2, $3, $4)",
        event.event_id,
        event.booking_id,
        event.event_type,
        f"Booking confirmed: {event.hotel_name}, {event.check_in} to {event.check_out}",
    )
