"""Writing to an outbox: one row type, one INSERT, one function, for every writer.

The writers: the booking service (a booking's ``BookingConfirmed``, inside the one statement
that places the booking, from :func:`insert_for_each_statement`; a cancellation's
``BookingCancelled``), and the consumer runtime (the events a handler returns, its progress
reports, and the batched writes of several deliveries at once). All of them go through
:func:`write_rows` or, inside a larger statement, :func:`insert_for_each_statement` (the
runtime's own reports, in the message that commits: :func:`literal_insert`).

This module does not import ``shared.messaging``: the consumer runtime imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from shared.db.pool import Connection
from shared.events import Event
from shared.observability.tracing import current_traceparent


class OutboxRow(NamedTuple):
    """What one event stores; the fields are the columns the writers fill, in order."""

    event_id: UUID
    event_type: str
    booking_id: UUID
    occurred_at: datetime
    body: str
    # The W3C trace context of the transaction that wrote the row: the relay's producer
    # span is its child, so the consumers join the trace of what caused the event.
    traceparent: str | None

    @classmethod
    def of(cls, event: Event, *, traceparent: str | None = None) -> OutboxRow:
        """The row of ``event``, in the current trace unless ``traceparent`` is given (a
        batch writes each delivery's rows in that delivery's trace)."""
        return cls(
            event.event_id,
            event.event_type,
            event.booking_id,
            event.occurred_at,
            event.to_json().decode(),
            traceparent or current_traceparent(),
        )


COLUMNS = ", ".join(OutboxRow._fields)


def _params(first: int) -> str:
    """A row's parameters, ``$first`` onwards."""
    return ", ".join(f"${first + i}" for i in range(len(OutboxRow._fields)))


def insert_statement(schema: str, *, first: int = 1) -> str:
    """The INSERT of one row into ``schema``'s outbox, its parameters ``$first`` onwards: on
    its own (:func:`write_rows`), or inside a statement that writes the row along with
    other changes (one round trip instead of two)."""
    return f'INSERT INTO "{schema}".outbox ({COLUMNS}) VALUES ({_params(first)})'


def insert_for_each_statement(schema: str, source: str, *, first: int = 1) -> str:
    """As :func:`insert_statement`, but one row for each row of ``source`` (a CTE of the
    caller's statement): none when it is empty, so the event is written only if what it
    announces was."""
    return f'INSERT INTO "{schema}".outbox ({COLUMNS}) SELECT {_params(first)} FROM {source}'


def literal(value: object) -> str:
    """``value`` as an SQL literal (NULL for None), an ``E''`` string that reads the same
    whatever ``standard_conforming_strings`` says. Only for values the runtime makes itself
    (shared/messaging/inbox.py), never for a request's or a message's."""
    if value is None:
        return "NULL"
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    if "\x00" in text:  # no PostgreSQL text holds it: refused rather than cut
        raise ValueError("a literal cannot contain NUL")
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def literal_insert(schema: str, rows: Sequence[OutboxRow]) -> str:
    """The INSERT of ``rows`` with their values as literals: a statement that can share a
    simple-protocol message with others (shared/messaging/inbox.py: with the COMMIT)."""
    values = ", ".join(
        f"({literal(row.event_id)}::uuid, {literal(row.event_type)}, "
        f"{literal(row.booking_id)}::uuid, {literal(row.occurred_at)}::timestamptz, "
        f"{literal(row.body)}, {literal(row.traceparent)})"
        for row in rows
    )
    return f'INSERT INTO "{schema}".outbox ({COLUMNS}) VALUES {values}'


async def write_rows(conn: Connection, schema: str, rows: Sequence[OutboxRow]) -> None:
    """Add ``rows`` to ``schema``'s outbox in the caller's transaction (several in one
    pipelined round trip). The caller wakes the relay after its commit."""
    if len(rows) == 1:
        await conn.execute(insert_statement(schema), *rows[0])
    elif rows:
        await conn.executemany(insert_statement(schema), rows)
