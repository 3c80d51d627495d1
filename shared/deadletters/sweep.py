"""One pass through a dead-letter queue: the loop behind replay, dry run and purge.

It consumes the messages that were ready when it began (see broker.py for why that count
ends the pass), sends matching ones in batches, and settles each batch only when the
broker has answered for it: confirmed copies are acked (or, in a dry run, put back), the
others requeued. Two batches are in flight at once, so the broker confirms one while the
next is published; batches are still settled strictly in order, which is what lets one
multiple-ack settle a whole batch safely.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aio_pika.abc import AbstractIncomingMessage

from shared.deadletters import broker
from shared.deadletters.errors import BrokerUnreachable, InvalidRequest
from shared.deadletters.model import DeadLetter, Filters, Summary

Batch = list[AbstractIncomingMessage]
# Publishes a batch's copies; one result per message: None when confirmed, else the error.
Send = Callable[[Batch], Awaitable[Sequence[BaseException | None]]]
Progress = Callable[[Summary], None]
IN_FLIGHT = 2


@dataclass(frozen=True)
class Action:
    """What happens to matching messages: ``send`` them (None: nothing to send), then
    remove them from the queue, or put them back (``keep``, a dry run); counted in the
    summary field ``counts``."""

    counts: str
    send: Send | None = None
    keep: bool = False


class Pacer:
    """Bounds the average rate: the n-th message goes no earlier than start + n / rate."""

    def __init__(self, rate: float | None) -> None:
        if rate is not None and rate <= 0:
            raise InvalidRequest(f"the rate must be positive, not {rate}")
        self.rate = rate
        self._start: float | None = None
        self._sent = 0

    async def wait(self, count: int) -> None:
        if self.rate is None:
            return
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._sent / self.rate
        self._sent += count  # reserved before sleeping: concurrent batches queue up behind
        if due > now:
            await asyncio.sleep(due - now)


class Sweep:
    def __init__(self, scan: broker.Scan, action: Action, summary: Summary) -> None:
        self._scan, self._action, self._summary = scan, action, summary
        self._in_flight: deque[asyncio.Task[None]] = deque()
        # No delivery came within the idle timeout before the count seen at the start:
        # another replay took the rest, or the broker stalled (the caller checks which).
        self.stalled = False

    async def run(self, filters: Filters, batch_size: int, progress: Progress | None) -> None:
        summary, now = self._summary, datetime.now(UTC)
        summary.total = self._scan.ready
        batch: Batch = []
        selected = 0
        try:
            while summary.seen < summary.total and not summary.failed:
                if filters.limit is not None and selected >= filters.limit:
                    break
                message = await self._scan.next()
                if message is None:
                    self.stalled = True
                    break
                summary.seen += 1
                if filters.takes_all or filters.matches(DeadLetter.of(message), now):
                    batch.append(message)
                    selected += 1
                else:
                    await self._scan.requeue(message)
                    summary.skipped += 1
                if len(batch) >= batch_size:
                    await self._start(batch)
                    batch = []
                if progress is not None and summary.seen % 100 == 0:
                    progress(summary)
            await self._start(batch)
            await self._drain(0)
        finally:
            # Only left after a failure: stop them; their messages return to the queue.
            for task in self._in_flight:
                task.cancel()
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        if progress is not None:
            progress(summary)

    async def _start(self, batch: Batch) -> None:
        if not batch:
            return
        await self._drain(IN_FLIGHT - 1)
        previous = self._in_flight[-1] if self._in_flight else None
        self._in_flight.append(asyncio.create_task(self._flush(batch, previous)))

    async def _drain(self, keep: int) -> None:
        while len(self._in_flight) > keep:
            await self._in_flight.popleft()

    async def _flush(self, batch: Batch, previous: asyncio.Task[None] | None) -> None:
        send = self._action.send
        results = await send(batch) if send is not None else [None] * len(batch)
        if previous is not None:
            await asyncio.wait([previous])  # settle in order
            if previous.cancelled() or previous.exception() is not None:
                # Its messages may be unsettled: a multiple-ack now would cover them too.
                raise BrokerUnreachable("an earlier batch could not be settled")
        await self._settle(batch, results)

    async def _settle(self, batch: Batch, results: Sequence[BaseException | None]) -> None:
        summary, done = self._summary, []
        for message, error in zip(batch, results, strict=True):
            if error is None:
                done.append(message)
            else:
                await self._scan.requeue(message)
                summary.failed += 1
                summary.error = summary.error or str(error)
        if not done:
            return
        # Everything unsettled up to the last done message is this batch's done messages:
        # earlier batches are settled, and this batch's failures were just requeued.
        if self._action.keep:
            await self._scan.requeue(done[-1], through=True)
        else:
            await self._scan.ack(done[-1], through=True)
        setattr(summary, self._action.counts, getattr(summary, self._action.counts) + len(done))
