"""A step's progress reports: the FulfilmentProgressed events (done, retrying, failed) a
consumer sends for each booking event it handles, so the booking service can show each
step's status. They leave through the service's outbox like any other event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from shared.db.pool import acquire
from shared.events import BOOKING_EVENTS, Event, FulfilmentProgressed, StepStatus
from shared.outbox import add_to_outbox

log = logging.getLogger(__name__)


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
        if not self.enabled or event.event_type not in BOOKING_EVENTS:
            return None
        return FulfilmentProgressed(
            booking_id=event.booking_id,
            step=self.step,
            status=status,
            attempts=attempts,
            source_event_id=event.event_id,
            source_event_type=event.event_type,
            error=None if error is None else f"{type(error).__name__}: {error}"[:500],
        )

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
                await add_to_outbox(tx, self.step, progress)
        except Exception as exc:
            log.warning("%s: could not record %s progress: %r", self.queue, status, exc)
            return
        self.on_outbox_write()
