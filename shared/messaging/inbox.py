"""One delivery's transaction (the idempotency record, the handler's effect, its progress
report) in two round trips to PostgreSQL instead of four::

    BEGIN; INSERT INTO processed_events ... ON CONFLICT DO NOTHING   ── one Query message
    handler(event, tx)                                               ── its own statements
    INSERT INTO outbox ...  (the events the handler emitted, if any)   ── parameterised
    INSERT INTO outbox ... (its progress report); COMMIT             ── one Query message

asyncpg sends BEGIN, each statement and COMMIT as a round trip of its own, and under load the
round trips (a socket write and a wake-up of a PostgreSQL backend each) were most of what a
delivery cost, more than the runtime's Python (bench scenario 2). PostgreSQL's simple query
protocol takes several statements in one message, but no parameters: so the values of these
two messages are written as literals, and only values this runtime makes itself: event ids
and booking ids (``UUID`` objects), an event type from the registry of event classes, a
timestamp, a traceparent made by OpenTelemetry, and the JSON of the progress report it built
(ASCII: ``json.dumps`` escapes everything else). ``literal`` quotes them as ``E''``
strings (shared/outbox/rows.py), which read the same whatever ``standard_conforming_strings``
says. Whatever a handler emits goes through the ordinary parameterised ``write_rows``.

The transaction is opened by hand, so a handler cannot open a nested one
(``tx.transaction()`` refuses inside a transaction it did not start); none needs to.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from shared.db.pool import Connection
from shared.events import Event
from shared.outbox.rows import OutboxRow, literal, literal_insert


async def begin_and_claim(tx: Connection, schema: str, event: Event) -> bool:
    """Open the delivery's transaction and claim ``event``'s id in one round trip: True when
    this transaction claimed it, False when it was processed already (a concurrent duplicate
    blocks here until the first one commits, then finds the row). The transaction stays open
    either way; end it with :func:`commit` or :func:`rollback`."""
    status = await tx.execute(
        f'BEGIN; INSERT INTO "{schema}".processed_events (event_id, event_type, booking_id) '
        f"VALUES ({literal(event.event_id)}::uuid, {literal(event.event_type)}, "
        f"{literal(event.booking_id)}::uuid) ON CONFLICT DO NOTHING"
    )
    return status == "INSERT 0 1"


async def commit(tx: Connection, schema: str, rows: Sequence[OutboxRow] = ()) -> None:
    """Add ``rows`` (the runtime's own: progress reports) to the outbox and commit, in one
    round trip."""
    insert = f"{literal_insert(schema, rows)}; " if rows else ""
    await tx.execute(f"{insert}COMMIT")


async def rollback(tx: Connection) -> None:
    """End the transaction without its effects. Best effort: on a broken connection there is
    nothing to roll back, and the pool discards it on release."""
    if tx.is_closed() or not tx.is_in_transaction():
        return
    with contextlib.suppress(Exception):
        await tx.execute("ROLLBACK")
