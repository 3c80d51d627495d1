"""Voucher handlers: plain async functions of (event, transaction, named dependencies).

This step issues the voucher record and its code; rendering the PDF builds on it.
"""

from __future__ import annotations

import asyncio
import hashlib

from shared.db.pool import Connection
from shared.events import BookingConfirmed


def voucher_code(event: BookingConfirmed) -> str:
    """Derived from the booking id, so every service that knows the booking agrees on it."""
    digest = hashlib.sha256(f"voucher:{event.booking_id}".encode()).hexdigest().upper()
    return f"V-{digest[:4]}-{digest[4:8]}-{digest[8:12]}"


async def issue_voucher(
    event: BookingConfirmed, tx: Connection, *, simulated_latency: float = 0.0
) -> None:
    if simulated_latency:
        await asyncio.sleep(simulated_latency)
    await tx.execute(
        "INSERT INTO voucher.vouchers (booking_id, event_id, code) VALUES ($1, $2, $3)",
        event.booking_id,
        event.event_id,
        voucher_code(event),
    )
