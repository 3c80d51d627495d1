"""Latency from a booking's commit to every consumer done, read from the database.

Start: the ``occurred_at`` of the booking's ``BookingConfirmed`` outbox row, stamped inside
the committing transaction. Done: for each consumer, the ``occurred_at`` of its
``FulfilmentProgressed(done)`` report, stamped after its handler returned, inside the
transaction that commits the effect. One host, one clock; the figure is the maximum over
the three consumers.
"""

from __future__ import annotations

from datetime import datetime

from bench.harness import Stack

DONE = """
SELECT b.booking_id,
       extract(epoch FROM b.occurred_at) AS committed,
       extract(epoch FROM greatest(n.occurred_at, e.occurred_at, v.occurred_at)) AS done
FROM booking.outbox b
JOIN notification.outbox n ON n.booking_id = b.booking_id AND n.event_type = 'FulfilmentProgressed'
JOIN email.outbox e ON e.booking_id = b.booking_id AND e.event_type = 'FulfilmentProgressed'
JOIN voucher.outbox v ON v.booking_id = b.booking_id AND v.event_type = 'FulfilmentProgressed'
WHERE b.event_type = 'BookingConfirmed' AND b.occurred_at >= $1
"""


async def bookings_since(stack: Stack, since: datetime) -> int:
    rows = await stack.sql(
        "SELECT count(*) AS n FROM booking.outbox WHERE event_type = 'BookingConfirmed' "
        "AND occurred_at >= $1",
        since,
    )
    return int(rows[0]["n"])


async def latencies_ms(stack: Stack, since: datetime) -> list[float]:
    """End-to-end latency of every booking since ``since`` that all three consumers did."""
    rows = await stack.sql(DONE, since)
    return [float(r["done"] - r["committed"]) * 1000 for r in rows]


async def db_now(stack: Stack) -> datetime:
    rows = await stack.sql("SELECT now() AS t")
    value: datetime = rows[0]["t"]
    return value
