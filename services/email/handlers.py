"""Email handlers: plain async functions of (event, transaction, named dependencies).

Each builds its email (refusing, as permanent, an event that would inject headers), records
it in ``email.emails`` and then hands it to the SMTP server, all inside the transaction that
also records the event as processed. A failed send rolls the record back; the only window
for a second copy of an email is a commit that fails after the server took it, and the
copy then carries the same Message-ID.

Building an email (the voucher PDF, the MIME structure) is CPU work: it runs off the event
loop, on the ``render`` executor the process gives (one thread), so other messages keep
moving meanwhile.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import Executor
from functools import partial

from services.email.messages import Outgoing, cancellation_email, confirmation_email
from services.email.smtp import SmtpSender
from shared.db.pool import Connection
from shared.events import BookingCancelled, BookingConfirmed


async def send_confirmation(
    event: BookingConfirmed,
    tx: Connection,
    *,
    sender: SmtpSender,
    render: Executor,
    email_from: str,
    sent_by: str | None = None,
) -> None:
    outgoing = await _build(render, partial(confirmation_email, event, email_from=email_from))
    await _record_and_send(event, outgoing, tx, sender, sent_by)


async def send_cancellation(
    event: BookingCancelled,
    tx: Connection,
    *,
    sender: SmtpSender,
    render: Executor,
    email_from: str,
    sent_by: str | None = None,
) -> None:
    outgoing = await _build(render, partial(cancellation_email, event, email_from=email_from))
    await _record_and_send(event, outgoing, tx, sender, sent_by)


async def _build(render: Executor, build: Callable[[], Outgoing]) -> Outgoing:
    # In the handler's context, as asyncio.to_thread would: log lines and spans from the
    # build keep the message's trace.
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(render, context.run, build)


async def _record_and_send(
    event: BookingConfirmed | BookingCancelled,
    outgoing: Outgoing,
    tx: Connection,
    sender: SmtpSender,
    sent_by: str | None,
) -> None:
    # Recorded first, so a database error surfaces before the email has gone out.
    await tx.execute(
        "INSERT INTO email.emails "
        "(event_id, booking_id, kind, recipient, subject, message_id, voucher_code, sent_by) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        event.event_id,
        event.booking_id,
        outgoing.kind,
        outgoing.recipient,
        outgoing.subject,
        outgoing.message_id,
        outgoing.voucher_code,
        sent_by,
    )
    await sender.send(outgoing.message)
