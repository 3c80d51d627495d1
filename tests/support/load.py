"""The load driver: bookings through the HTTP API with bounded concurrency.

Each booking carries an Idempotency-Key, so a request that timed out or met a dead API can be
sent again without booking twice; every answer is recorded with its latency. What the driver
saw is only the client's view: a booking whose answer never came may still be committed, so
the checker reconciles against ``booking.bookings``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.stack import spread_booking

# A request answered in more than this is a hang, whatever its status.
HANG = 5.0


@dataclass
class Answer:
    at: float  # monotonic time the request was sent
    latency: float
    status: int | str  # HTTP status, or the exception's name


@dataclass
class LoadRecord:
    """What the client saw, for every booking it tried."""

    attempted: int = 0
    accepted: dict[int, str] = field(default_factory=dict)  # booking index -> id from a 201
    answers: list[Answer] = field(default_factory=list)
    gave_up: list[int] = field(default_factory=list)

    @property
    def statuses(self) -> Counter[int | str]:
        return Counter(answer.status for answer in self.answers)

    @property
    def max_latency(self) -> float:
        return max((answer.latency for answer in self.answers), default=0.0)

    def between(self, start: float, end: float) -> list[Answer]:
        return [a for a in self.answers if start <= a.at <= end]


class LoadDriver:
    def __init__(
        self,
        base_url: str,
        *,
        concurrency: int = 8,
        patience: float = 60.0,
        pause: float = 0.2,
        key_prefix: str = "chaos",
        booking: Callable[[int], dict[str, Any]] = spread_booking,
    ) -> None:
        self._base_url = base_url
        self._concurrency = concurrency
        self._patience = patience  # how long one booking is retried before giving up on it
        self._pause = pause
        self._key_prefix = key_prefix
        self._booking = booking  # the i-th booking's body
        self.record = LoadRecord()

    async def run(
        self,
        count: int,
        *,
        first: int = 0,
        rate: float | None = None,
        concurrency: int | None = None,
    ) -> LoadRecord:
        """Book ``count`` stays (indices ``first``...); ``rate`` caps bookings per second."""
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(first, first + count):
            queue.put_nowait(i)
        concurrency = concurrency or self._concurrency
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(
            base_url=self._base_url, timeout=HANG, limits=limits
        ) as client:
            workers = [
                asyncio.create_task(self._worker(client, queue, rate, concurrency))
                for _ in range(concurrency)
            ]
            await asyncio.gather(*workers)
        return self.record

    async def _worker(
        self,
        client: httpx.AsyncClient,
        queue: asyncio.Queue[int],
        rate: float | None,
        concurrency: int,
    ) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            started = time.monotonic()
            await self._book(client, i)
            if rate:
                spacing = concurrency / rate
                await asyncio.sleep(max(0.0, spacing - (time.monotonic() - started)))

    async def _book(self, client: httpx.AsyncClient, i: int) -> None:
        self.record.attempted += 1
        headers = {"Idempotency-Key": f"{self._key_prefix}-{i}"}
        deadline = time.monotonic() + self._patience
        while time.monotonic() < deadline:
            sent = time.monotonic()
            status: int | str
            try:
                response = await client.post("/bookings", json=self._booking(i), headers=headers)
                status = response.status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            self.record.answers.append(Answer(sent, time.monotonic() - sent, status))
            if status == 201:
                self.record.accepted[i] = response.json()["id"]
                return
            if isinstance(status, int) and 400 <= status < 500:
                return  # refused for good (409, 422): not retried, and counted
            await asyncio.sleep(self._pause)
        self.record.gave_up.append(i)
