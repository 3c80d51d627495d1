"""Email handlers: plain async functions of (event, transaction, named dependencies).

This step records the confirmation email it would send; delivery over SMTP builds on it.
"""

from __future__ import annotations

import asyncio

from shared.db.pool import Connection
from shared.events import BookingConfirmed


async def send_confirmation(
    event: BookingConfirmed, tx: Connection, *, simulated_latency: float = 0.0
) -> None:
    if simulated_latency:
        await asyncio.sleep(simulated_latency)
    await tx.execute(
        "INSERT INTO email.emails (event_id, booking_id, kind, recipient, subject) "
        "VALUES ($1, $2, 'confirmation', $3, $4)",
        event.event_id,
        event.booking_id,
        event.guest_email,
        f"Your booking at {event.hotel_name} is confirmed",
    )
