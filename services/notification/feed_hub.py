"""Live updates for the feed: one LISTEN connection per process wakes the readers of a
booking when a handler commits a notification for it.

The NOTIFY only says "booking X has news"; readers then query the rows after the last id
they sent, so a lost or merged notification costs latency, never data. After (re)connecting
the hub wakes every reader, because NOTIFYs sent while it was not listening are lost; readers
also re-query at each heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator
from uuid import UUID

import asyncpg

from shared.db.pool import UNAVAILABLE_ERRORS
from shared.waiting import first_of

log = logging.getLogger(__name__)

FEED_CHANNEL = "notification_feed"
LISTENER_ERRORS: tuple[type[BaseException], ...] = (*UNAVAILABLE_ERRORS, asyncpg.PostgresError)


class FeedHub:
    def __init__(
        self,
        dsn: str,
        *,
        connect_timeout: float = 5.0,
        check_interval: float = 15.0,
        reconnect_max_delay: float = 5.0,
    ) -> None:
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._check_interval = check_interval
        self._reconnect_max_delay = reconnect_max_delay
        self._readers: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self.closed = False
        self.listening = False

    @contextlib.contextmanager
    def subscribe(self, booking_id: UUID) -> Iterator[asyncio.Event]:
        """An event set whenever ``booking_id`` may have new notifications (or the hub
        closes); the reader clears it before each query."""
        key, wake = str(booking_id), asyncio.Event()
        self._readers[key].add(wake)
        try:
            yield wake
        finally:
            self._readers[key].discard(wake)
            if not self._readers[key]:
                del self._readers[key]

    def wake(self, booking_id: str) -> None:
        for wake in self._readers.get(booking_id, ()):
            wake.set()

    def wake_all(self) -> None:
        for readers in self._readers.values():
            for wake in readers:
                wake.set()

    def close(self) -> None:
        """End every open feed stream (on shutdown)."""
        self.closed = True
        self.wake_all()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object, /) -> None:
        self.wake(str(payload))

    async def run(self, stop: asyncio.Event) -> None:
        """LISTEN until ``stop``, reconnecting with capped backoff."""
        delay = 0.2
        while not stop.is_set():
            try:
                await self._listen_until_lost(stop)
                delay = 0.2
            except LISTENER_ERRORS as exc:
                log.warning("feed listener: %r; reconnecting in %.1fs", exc, delay)
            if not stop.is_set():
                await first_of(stop, timeout=delay)
                delay = min(delay * 2, self._reconnect_max_delay)

    async def _listen_until_lost(self, stop: asyncio.Event) -> None:
        conn = await asyncpg.connect(self._dsn, timeout=self._connect_timeout)
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(FEED_CHANNEL, self._on_notify)
            self.listening = True
            self.wake_all()
            while not (stop.is_set() or lost.is_set()):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(first_of(stop, lost), self._check_interval)
                if not (stop.is_set() or lost.is_set()):
                    # A half-open TCP connection would otherwise go unnoticed.
                    await conn.execute("SELECT 1", timeout=self._connect_timeout)
            if lost.is_set():
                log.warning("feed listener: connection lost; reconnecting")
        finally:
            self.listening = False
            with contextlib.suppress(*LISTENER_ERRORS):
                await conn.close(timeout=2)
