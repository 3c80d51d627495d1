"""Latency from a booking's commit to every consumer done, read from the database.

Start: the ``occurred_at`` of the booking's ``BookingConfirmed`` outbox row, stamped inside
the committing transaction. Done: for each consumer, the ``occurred_at`` of its done report
(``FulfilmentProgressed(done)``, stamped after its handler returned; the voucher's
``VoucherIssued``, stamped as its handler made it), inside the transaction that commits the
effect. One host, one clock; the figure is the maximum over
the three consumers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bench.harness import Stack
from shared.messaging.topology import CONSUMER_SERVICES


def _done(schema: str) -> str:
    # The first done report per booking: a retried step also reported "retrying", and a
    # redelivered one may report done twice; either would count the booking twice.
    # The voucher's done report is its VoucherIssued, stamped with the attempts.
    return f"""(SELECT booking_id, min(occurred_at) AS at FROM {schema}.outbox
               WHERE occurred_at >= $1
                 AND ((event_type = 'FulfilmentProgressed' AND body::jsonb->>'status' = 'done')
                      OR (event_type = 'VoucherIssued' AND body::jsonb->>'attempts' IS NOT NULL))
               GROUP BY booking_id)"""


DONE = f"""
SELECT b.booking_id,
       extract(epoch FROM b.occurred_at) AS committed,
       extract(epoch FROM greatest(n.at, e.at, v.at)) AS done
FROM booking.outbox b
JOIN {_done("notification")} n ON n.booking_id = b.booking_id
JOIN {_done("email")} e ON e.booking_id = b.booking_id
JOIN {_done("voucher")} v ON v.booking_id = b.booking_id
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


async def last_done(stack: Stack, since: datetime) -> dict[str, float | None]:
    """Each consumer's last done report since ``since`` (epoch seconds): which one a drain
    waited for."""
    found: dict[str, float | None] = {}
    for schema in CONSUMER_SERVICES:
        query = f"SELECT extract(epoch FROM max(at)) AS t FROM {_done(schema)} d"
        rows = await stack.sql(query, since)
        found[schema] = None if rows[0]["t"] is None else float(rows[0]["t"])
    return found


@dataclass(frozen=True)
class DoneTimes:
    """When each booking since a moment was done (Unix seconds): by each step, by all three."""

    per_step: dict[str, list[float]]
    all_three: list[float]


async def done_times(stack: Stack, since: datetime) -> DoneTimes:
    per_step = {}
    for step in CONSUMER_SERVICES:
        rows = await stack.sql(f"SELECT extract(epoch FROM at) AS t FROM {_done(step)} d", since)
        per_step[step] = [float(r["t"]) for r in rows]
    rows = await stack.sql(DONE, since)
    return DoneTimes(per_step, [float(r["done"]) for r in rows])
