"""A step's progress reports: the FulfilmentProgressed events (done, retrying, failed) a
consumer sends for each booking event it handles, so the booking service can show each
step's status. They leave through the service's outbox like any other event.

A failure is reported with a short public code (``error_code``), which is all the booking
API shows: the failure's text names SMTP hosts, webhook URLs and other servers' answers,
and stays in the logs, the dead-letter headers and the report's ``error``. The codes:

=========================== ===========================================================
``smtp-temporary-failure``  email: SMTP answered 4xx, refused or lost the connection, timed out
``smtp-rejected``           email: SMTP answered 5xx (or lacks what is needed)
``invalid-guest-details``   email: a guest value cannot go into an email (control character,
                            not an address)
``email-not-renderable``    email: the email could not be built
``webhook-temporary-failure`` notification: a webhook or push target answered 5xx, 408 or
                            429, timed out or could not be reached
``webhook-rejected``        notification: a target answered another 4xx or a redirect, or
                            its URL is unusable
``invalid-message``         the event could not be decoded or does not match its schema
``database-unavailable``    PostgreSQL unreachable, restarting or too slow
``database-error``          PostgreSQL refused a statement
``temporary-failure``       another step's transient failure (retried)
``permanent-failure``       another step's permanent failure
``internal-error``          anything else: a bug, see the logs
``unclassified-failure``    shown by the booking service for a report without a code
=========================== ===========================================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg

from shared.db.pool import UNAVAILABLE_ERRORS, acquire
from shared.errors import (
    DatabaseUnavailable,
    HandlerError,
    InvalidMessage,
    PermanentError,
    TransientError,
)
from shared.events import BOOKING_EVENTS, Event, FulfilmentProgressed, StepStatus
from shared.outbox.rows import OutboxRow, write_rows

log = logging.getLogger(__name__)
# A step's transient and permanent HandlerErrors, when they carry no code of their own.
_STEP_CODES = {
    "email": ("smtp-temporary-failure", "smtp-rejected"),
    "notification": ("webhook-temporary-failure", "webhook-rejected"),
}


def error_code(step: str, error: BaseException) -> str:
    """The public code of ``error`` in ``step`` (the table above)."""
    if isinstance(error, InvalidMessage):
        return "invalid-message"
    if isinstance(error, HandlerError):
        if error.code is not None:
            return error.code
        transient, permanent = _STEP_CODES.get(step, ("temporary-failure", "permanent-failure"))
        if isinstance(error, TransientError):
            return transient
        if isinstance(error, PermanentError):
            return permanent
    if isinstance(error, (DatabaseUnavailable, *UNAVAILABLE_ERRORS)):
        return "database-unavailable"
    if isinstance(error, asyncpg.PostgresError):
        return "database-error"
    return "internal-error"


@dataclass(frozen=True)
class ProgressReports:
    step: str  # the reporting service, whose outbox the reports go to
    enabled: bool  # off for the booking service's own consumer of these reports
    pool: asyncpg.Pool
    acquire_timeout: float
    on_outbox_write: Callable[[], None]
    queue: str  # for log lines

    def of(
        self, event: Event, status: StepStatus, attempts: int, error: BaseException | None
    ) -> FulfilmentProgressed | None:
        """The report on ``event``, or None when there is none to send: reports are off, or
        it is not a booking event."""
        if not self._reports_on(event):
            return None
        return FulfilmentProgressed(
            booking_id=event.booking_id,
            step=self.step,
            status=status,
            attempts=attempts,
            source_event_id=event.event_id,
            source_event_type=event.event_type,
            error=None if error is None else f"{type(error).__name__}: {error}"[:500],
            error_code=None if error is None else error_code(self.step, error),
        )

    def done(
        self, event: Event, emitted: Sequence[Event], attempts: int
    ) -> tuple[list[Event], Event | None]:
        """What handling ``event`` sends, as (the handler's events, the done report or None).
        An emitted event that is this step's done report itself (``Event.reports_done_for``:
        the voucher's VoucherIssued) takes the place of the report, stamped with the attempts."""
        if not (self._reports_on(event) and any(e.reports_done_for == self.step for e in emitted)):
            return list(emitted), self.of(event, "done", attempts, None)
        stamped = [
            e.model_copy(update={"attempts": attempts}) if e.reports_done_for == self.step else e
            for e in emitted
        ]
        return stamped, None

    def _reports_on(self, event: Event) -> bool:
        return self.enabled and event.event_type in BOOKING_EVENTS

    async def record(
        self, event: Event, status: StepStatus, attempts: int, error: BaseException
    ) -> None:
        """Writes the report of a failed attempt, apart from the delivery's rolled-back
        transaction. Best effort: a failure is often the database itself, and a missing
        report must not stop the message from being retried or parked."""
        progress = self.of(event, status, attempts, error)
        if progress is None:
            return
        try:
            async with acquire(self.pool, self.acquire_timeout) as tx:
                await write_rows(tx, self.step, [OutboxRow.of(progress)])
        except Exception as exc:
            log.warning("%s: could not record %s progress: %r", self.queue, status, exc)
            return
        self.on_outbox_write()
