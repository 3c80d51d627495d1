"""Email handlers: plain async functions of (event, transaction, what was prepared, named
dependencies).

Each email is prepared before the delivery's transaction opens: built (refusing, as
permanent, an event that would inject headers) and given one of the SMTP pool's slots, so
no database connection is held while an email renders or waits for an SMTP connection.
Inside the transaction it is recorded in ``email.emails`` and handed to the SMTP server; a
failed send rolls the record back. The only window for a second copy of an email is a
commit that fails after the server took it, and the copy then carries the same Message-ID.

Building an email (the voucher PDF, the MIME bytes) is about a millisecond of CPU: it runs
on the event loop, as the voucher service renders. A worker thread saved the loop nothing
once building got this cheap: the hand-over and the GIL passed back and forth cost about
as much, and a thread waiting for the GIL holds the loop up to the switch interval (5 ms).

A cancellation can overtake its confirmation (the confirmation was retrying, or waited in
another replica): the guest must not get "you are booked" after "you are cancelled". Both
handlers take a lock on the booking, and a confirmation finding the cancellation sent sends
nothing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from services.email.composing import Outgoing, cancellation_email, confirmation_email
from services.email.smtp import SmtpSender, SmtpSlot
from shared.db.pool import Connection
from shared.events import BookingCancelled, BookingConfirmed

log = logging.getLogger(__name__)
BookingEvent = BookingConfirmed | BookingCancelled


@dataclass(frozen=True)
class ReadyEmail:
    """What preparing an email gives its handler: the email, and a slot to send it in."""

    outgoing: Outgoing
    slot: SmtpSlot


@asynccontextmanager
async def prepare_email(
    event: BookingEvent, *, sender: SmtpSender, email_from: str
) -> AsyncIterator[ReadyEmail]:
    if isinstance(event, BookingConfirmed):
        outgoing = confirmation_email(event, email_from=email_from)
    else:
        outgoing = cancellation_email(event, email_from=email_from)
    async with sender.slot() as slot:
        yield ReadyEmail(outgoing, slot)


async def send_confirmation(
    event: BookingConfirmed, tx: Connection, ready: ReadyEmail, *, sent_by: str | None = None
) -> None:
    await _lock_booking(tx, event)
    # Recorded unless the cancellation was sent first: checked and recorded in one statement
    # (after the lock, so it sees a cancellation committed while it waited).
    if not await _record(tx, event, ready.outgoing, sent_by, unless_cancelled=True):
        log.info("booking %s was cancelled first: no confirmation email", event.booking_id)
        return
    await ready.slot.send(ready.outgoing)


async def send_cancellation(
    event: BookingCancelled, tx: Connection, ready: ReadyEmail, *, sent_by: str | None = None
) -> None:
    await _lock_booking(tx, event)
    await _record(tx, event, ready.outgoing, sent_by, unless_cancelled=False)
    await ready.slot.send(ready.outgoing)


async def _lock_booking(tx: Connection, event: BookingEvent) -> None:
    # Until the transaction ends: a confirmation and a cancellation of one booking, handled
    # at once by two replicas, take turns, so the confirmation sees a cancellation sent.
    await tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))", str(event.booking_id)
    )


async def _record(
    tx: Connection,
    event: BookingEvent,
    outgoing: Outgoing,
    sent_by: str | None,
    *,
    unless_cancelled: bool,
) -> bool:
    """Records the email in ``email.emails``, before it is sent, so a database error
    surfaces before the email has gone out. False when ``unless_cancelled`` and the
    booking's cancellation email was recorded already (nothing is recorded then)."""
    recorded = await tx.fetchval(
        "INSERT INTO email.emails "
        "(event_id, booking_id, kind, recipient, subject, message_id, voucher_code, sent_by) "
        "SELECT $1, $2, $3, $4, $5, $6, $7, $8 "
        "WHERE NOT ($9 AND EXISTS (SELECT 1 FROM email.emails "
        "WHERE booking_id = $2 AND kind = 'cancellation')) RETURNING true",
        event.event_id,
        event.booking_id,
        outgoing.kind,
        outgoing.recipient,
        outgoing.subject,
        outgoing.message_id,
        outgoing.voucher_code,
        sent_by,
        unless_cancelled,
    )
    return bool(recorded)
