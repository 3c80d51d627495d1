"""The outbox relay: publishes a service's outbox to a fanout exchange, one batch per pass.

A pass is three steps in one transaction: claim a batch (shared/outbox/claims.py), publish
it (shared/outbox/publish.py), mark what the broker confirmed (claims.py again). A row is
marked sent only after its confirm, so a crash or a broker outage leaves it for the next
pass (at-least-once; consumers deduplicate by event_id). Claims skip locked rows, so any
number of replicas can relay side by side without publishing a row twice in the normal case.

This module is the loop around the passes: when to run the next one (at once after a full
batch or a commit's :meth:`OutboxRelay.wake`, at the sweep interval otherwise, with capped
backoff after a failure), that no failure ever ends it, and that a commit made while a pass
waits for its confirms need not wait for that pass: two lanes of passes take turns to claim,
so one pass can be claiming while the other waits for the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from shared.db.pool import UNAVAILABLE_ERRORS, acquire
from shared.errors import DatabaseUnavailable, MessagingError
from shared.messaging.publisher import ConfirmingPublisher
from shared.observability.metrics import Metrics
from shared.outbox.claims import claim_batch, mark_batch
from shared.outbox.publish import publish_batch
from shared.waiting import first_of

log = logging.getLogger(__name__)
DB_FAILURES: tuple[type[BaseException], ...] = (
    DatabaseUnavailable,
    asyncpg.PostgresError,
    *UNAVAILABLE_ERRORS,
)


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: ConfirmingPublisher,
        *,
        schema: str,
        exchange: str,
        batch_size: int = 200,
        sweep_interval: float = 1.0,
        retry_max_delay: float = 5.0,
        acquire_timeout: float = 5.0,
        metrics: Metrics | None = None,
        user_id: str | None = None,
        concurrent_passes: int = 2,
    ) -> None:
        self._pool = pool
        # Set on every message as its AMQP user_id, which the broker checks against the
        # connection's user (see shared/outbox/publish.py).
        self._user_id = user_id
        self._publisher = publisher
        self._schema = schema
        self._exchange = exchange
        self._batch_size = batch_size
        self._sweep_interval = sweep_interval
        self._retry_max_delay = retry_max_delay
        self._acquire_timeout = acquire_timeout
        self._wakeup = asyncio.Event()
        # Passes in flight at once (each holds a connection of ``pool`` until it commits).
        self._concurrent_passes = concurrent_passes
        self._turn = asyncio.Lock()
        self.published = 0
        self._published_metric = (metrics or Metrics()).events_published.labels(outbox=schema)

    def wake(self) -> None:
        """Called after a commit: publish now rather than at the next sweep."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            # Connecting declares the topology, so consumers' queues exist (and collect
            # events) even before any consumer has ever started.
            await self._publisher.connect()
        except MessagingError as exc:
            log.warning("outbox relay %s: broker unavailable at start-up: %s", self._schema, exc)
        await asyncio.gather(*(self._passes(stop) for _ in range(self._concurrent_passes)))
        # One last pass, so what was committed just before the stop leaves now.
        with contextlib.suppress(MessagingError, *DB_FAILURES):
            await self.relay_once()

    async def _passes(self, stop: asyncio.Event) -> None:
        """One lane of passes. Lanes take turns to wait for work and claim it; a lane gives
        the turn up once it has claimed, so while its batch waits for the broker's confirms
        the next lane can already claim what was committed since (rows claimed by a pass
        are locked, and skipped by the others' claims)."""
        delay, due = 0.1, True  # at start, whatever is waiting leaves at once
        while not stop.is_set():
            await self._turn.acquire()
            turn = _Turn(self._turn)
            try:
                if not due:
                    await self._sleep(stop, self._sweep_interval, wake_early=True)
                    if stop.is_set():
                        return
                self._wakeup.clear()  # before reading, so a commit during the pass is not missed
                published, failed = await self._survived_pass(turn.give_up)
            finally:
                turn.give_up()
            if failed:
                await self._sleep(stop, delay)
                delay = min(delay * 2, self._retry_max_delay)
                due = True
                continue
            delay = 0.1
            due = published >= self._batch_size  # a full batch means more may be waiting

    async def relay_once(self, claimed: Callable[[], None] = lambda: None) -> tuple[int, int]:
        """Publish one batch; return (published, failed). ``claimed`` is called once the
        batch is claimed."""
        async with acquire(self._pool, self._acquire_timeout) as conn, conn.transaction():
            rows = await claim_batch(conn, self._schema, self._batch_size)
            claimed()
            if not rows:
                return 0, 0
            errors = await publish_batch(
                self._publisher,
                rows,
                exchange=self._exchange,
                user_id=self._user_id,
                outbox=self._schema,
            )
            published, failed = await mark_batch(conn, self._schema, rows, errors)
        self.published += published
        self._published_metric.inc(published)
        return published, failed

    async def _survived_pass(self, claimed: Callable[[], None]) -> tuple[int, int]:
        """:meth:`relay_once`, any failure logged and counted as one (the loop backs off)."""
        try:
            return await self.relay_once(claimed)
        except MessagingError as exc:
            log.warning("outbox relay %s: broker unavailable: %s", self._schema, exc)
        except DB_FAILURES as exc:
            log.warning("outbox relay %s: database unavailable: %r", self._schema, exc)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise  # the relay itself is being cancelled
            # A cancellation from inside the client library (a future of a connection
            # that died under us), not aimed at the relay: a failure like any other.
            log.warning("outbox relay %s: broker operation cancelled; will retry", self._schema)
        except Exception:
            # The relay runs as a background task nobody awaits until shutdown: if it died,
            # its outbox would silently stop draining. Anything unforeseen is logged with
            # its traceback and retried like any other failure.
            log.exception("outbox relay %s: unexpected error; will retry", self._schema)
        return 0, 1

    async def _sleep(self, stop: asyncio.Event, seconds: float, wake_early: bool = False) -> None:
        await first_of(stop, *([self._wakeup] if wake_early else []), timeout=seconds)


class _Turn:
    """A lane's hold on the turn to claim, given up once (after the claim, or on the way
    out when the pass failed before it)."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self._lock, self._held = lock, True

    def give_up(self) -> None:
        if self._held:
            self._held = False
            self._lock.release()
