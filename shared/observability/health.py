"""Readiness checks: each answers None when fine, or a short reason when not."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import asyncpg

from shared.db.pool import acquire
from shared.observability.metrics import Metrics

Check = Callable[[], Awaitable[str | None]]


def database_check(pool: asyncpg.Pool, timeout: float) -> Check:
    async def check() -> str | None:
        try:
            async with acquire(pool, timeout) as conn:
                await conn.fetchval("SELECT 1", timeout=timeout)
        except Exception as exc:  # any failure is an answer here, never a crash
            return f"database unreachable: {exc!r}"[:300]
        return None

    return check


def consuming_check(is_consuming: Callable[[], bool], queue: str) -> Check:
    async def check() -> str | None:
        return None if is_consuming() else f"not consuming {queue} (reconnecting)"

    return check


def moving_check(stalled: Callable[[], str | None]) -> Check:
    """Unready while the consumer's deliveries in hand have stopped moving (held.py)."""

    async def check() -> str | None:
        return stalled()

    return check


@dataclass
class Ops:
    """What the ops endpoints serve: the process's metrics and its readiness checks."""

    service: str
    metrics: Metrics
    checks: Mapping[str, Check] = field(default_factory=dict)
    timeout: float = 2.0

    async def readiness(self) -> dict[str, str]:
        """``{check: "ok" | reason}``; a check that overruns the timeout is a reason too."""
        names = list(self.checks)

        async def bounded(check: Check) -> str | None:
            try:
                return await asyncio.wait_for(check(), self.timeout)
            except TimeoutError:
                return f"no answer within {self.timeout:g}s"

        results = await asyncio.gather(*(bounded(self.checks[n]) for n in names))
        return {name: result or "ok" for name, result in zip(names, results, strict=True)}
