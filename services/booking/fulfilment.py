"""The booking service's view of fulfilment, built from the events the consumers publish.

Handlers are plain async functions of (event, transaction); HANDLERS maps event types to
them for the shared consumer runtime, which runs inside the booking process.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from services.booking.schemas import STEPS, StepProgress
from shared.db.pool import Connection
from shared.events import (
    BookingCancelled,
    BookingConfirmed,
    FulfilmentProgressed,
    VoucherIssued,
    VoucherVoided,
)
from shared.messaging.handlers import Handler, route

UNCLASSIFIED = "unclassified-failure"


def public_error(event: FulfilmentProgressed) -> str | None:
    """The failure as the API shows it: a short code, never the error's text (a report
    from a consumer older than the codes has only the text)."""
    if event.error_code is not None:
        return event.error_code
    return None if event.error is None else UNCLASSIFIED


# Reports may arrive out of order (a retry's report can overtake an earlier one): the newest
# by occurred_at wins. The last error stays visible after a later success.
_UPSERT = """INSERT INTO booking.fulfilment AS f
               (booking_id, step, status, attempts, source_event_type, last_error_code,
                updated_at)
           {values}
           ON CONFLICT (booking_id, step) DO UPDATE SET
               status = excluded.status,
               attempts = excluded.attempts,
               source_event_type = excluded.source_event_type,
               last_error_code = coalesce(excluded.last_error_code, f.last_error_code),
               updated_at = excluded.updated_at
           WHERE f.updated_at <= excluded.updated_at"""
_ONE = _UPSERT.format(values="VALUES ($1, $2, $3, $4, $5, $6, $7)")
_MANY = _UPSERT.format(
    values="SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::text[], "
    "$6::text[], $7::timestamptz[])"
)


class _ProgressRow(NamedTuple):
    """A booking.fulfilment row, its fields in _UPSERT's column order."""

    booking_id: UUID
    step: str
    status: str
    attempts: int
    source_event_type: str
    last_error_code: str | None
    updated_at: datetime


def _columns(event: FulfilmentProgressed) -> _ProgressRow:
    return _ProgressRow(
        booking_id=event.booking_id,
        step=event.step,
        status=event.status,
        attempts=event.attempts,
        source_event_type=event.source_event_type,
        last_error_code=public_error(event),
        updated_at=event.occurred_at,
    )


async def record_progress(event: FulfilmentProgressed, tx: Connection) -> None:
    await tx.execute(_ONE, *_columns(event))


async def record_progresses(events: Sequence[FulfilmentProgressed], tx: Connection) -> None:
    """A batch's reports in one statement (two of the three events a booking sends back here
    are reports; the third, VoucherIssued, is the voucher step's)."""
    await _upsert_progress([_columns(event) for event in events], tx)


async def _upsert_progress(rows: Sequence[_ProgressRow], tx: Connection) -> None:
    """Progress rows in one statement. One statement cannot change a row twice, and applied
    one after the other two reports on the same step may keep a different error: those go
    one by one."""
    if len({(row.booking_id, row.step) for row in rows}) < len(rows):
        for row in rows:
            await tx.execute(_ONE, *row)
        return
    if rows:
        await tx.execute(_MANY, *(list(column) for column in zip(*rows, strict=True)))


async def store_voucher(event: VoucherIssued, tx: Connection) -> None:
    await store_vouchers([event], tx)


async def store_vouchers(events: Sequence[VoucherIssued], tx: Connection) -> None:
    """A batch's vouchers in one statement, and with them the voucher step's done reports
    (a VoucherIssued stamped with its attempts is that report: shared/events.py)."""
    if len({event.booking_id for event in events}) < len(events):
        for event in events:  # one statement cannot change a row twice
            await store_vouchers([event], tx)
        return
    await tx.execute(
        """INSERT INTO booking.vouchers (booking_id, code, pdf, issued_at)
           SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::timestamptz[])
           ON CONFLICT (booking_id) DO UPDATE SET code = excluded.code, pdf = excluded.pdf,
               issued_at = excluded.issued_at""",
        [event.booking_id for event in events],
        [event.code for event in events],
        [base64.b64decode(event.pdf_base64) for event in events],
        [event.occurred_at for event in events],
    )
    await _record_step_done(events, BookingConfirmed.event_type, tx)


async def void_voucher(event: VoucherVoided, tx: Connection) -> None:
    await tx.execute(
        """INSERT INTO booking.vouchers (booking_id, code, voided_at, issued_at)
           VALUES ($1, $2, $3, $3)
           ON CONFLICT (booking_id) DO UPDATE SET voided_at = excluded.voided_at""",
        event.booking_id,
        event.code,
        event.occurred_at,
    )
    await _record_step_done([event], BookingCancelled.event_type, tx)


async def _record_step_done(
    events: Sequence[VoucherIssued | VoucherVoided], source_event_type: str, tx: Connection
) -> None:
    """The done reports that ``events`` are (those stamped with their attempts)."""
    rows = [
        _ProgressRow(
            booking_id=e.booking_id,
            step=e.reports_done_for,
            status="done",
            attempts=e.attempts,
            source_event_type=source_event_type,
            last_error_code=None,
            updated_at=e.occurred_at,
        )
        for e in events
        if e.attempts is not None
    ]
    await _upsert_progress(rows, tx)


HANDLERS: dict[str, Handler] = dict(
    [
        route(FulfilmentProgressed, record_progress, batch=record_progresses),
        route(VoucherIssued, store_voucher, batch=store_vouchers),
        route(VoucherVoided, void_voucher),
    ]
)


async def progress_of(conn: Connection, booking_id: UUID) -> dict[str, StepProgress]:
    rows = await conn.fetch(
        """SELECT step, status, attempts, updated_at, last_error_code AS last_error,
                  source_event_type
           FROM booking.fulfilment WHERE booking_id = $1""",
        booking_id,
    )
    found = {row["step"]: StepProgress.model_validate(dict(row)) for row in rows}
    return {step: found.get(step, StepProgress()) for step in STEPS}
