"""A process as parts: the one shape every process has, the booking service included.

Each part is registered as it is built, with how it is closed and, if it runs, the stage at
which it stops::

    parts = Parts()
    async with parts.building():                     # a failed step closes what was built
        pool = parts.closes(await open_pool(), close_pool)
        parts.runs("consumer", consumer.run, stage=CONSUMING)
        parts.runs("relay", relay.run, stage=RELAYING)

    await parts.run(stop)    # until stop is set, or a part ends by itself
    await parts.close()      # in reverse order of building, once

Stopping goes stage by stage: the consumers drain first, then what must outlive their drain
(the relays sending their last reports, the retention job), then the ops server, which
answers (unready) to the end. Services add parts of their own (an SMTP pool, a feed hub)
the same way: composed, never subclassed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
Runner = Callable[[asyncio.Event], Awaitable[None]]
Closer = Callable[[T], Awaitable[Any] | Any]

# The stages, in the order they are stopped.
CONSUMING, RELAYING, SERVING = 0, 1, 2


@dataclass
class _Loop:
    name: str
    run: Runner
    stage: int
    stop: asyncio.Event = field(default_factory=asyncio.Event)


class Parts:
    def __init__(self) -> None:
        self._closing = contextlib.AsyncExitStack()
        self._loops: list[_Loop] = []

    def closes(self, part: T, close: Closer[T]) -> T:
        """Register ``part``, closed with ``close(part)`` (sync or async) at the end."""

        async def closing() -> None:
            result = close(part)
            if inspect.isawaitable(result):
                await result

        self._closing.push_async_callback(closing)
        return part

    def runs(self, name: str, run: Runner, *, stage: int = CONSUMING) -> None:
        """Run ``run(stop)`` while the process runs; its ``stop`` is set at its stage."""
        self._loops.append(_Loop(name, run, stage))

    @contextlib.asynccontextmanager
    async def building(self) -> AsyncIterator[Parts]:
        """Around the building steps: if one fails, what was built is closed."""
        try:
            yield self
        except BaseException:
            await self.close()
            raise

    async def run(self, stop: asyncio.Event, *, stage_timeout: float | None = None) -> None:
        """Run every loop until ``stop`` is set or one of them ends by itself, then stop them
        stage by stage (each given ``stage_timeout``, then cancelled). Raises the first error
        a loop ended with."""
        tasks: dict[str, asyncio.Future[None]] = {
            loop.name: asyncio.ensure_future(loop.run(loop.stop)) for loop in self._loops
        }
        waiting: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        watched: list[asyncio.Future[Any]] = [waiting, *tasks.values()]
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        stop.set()
        for stage in sorted({loop.stage for loop in self._loops}):
            now = [loop for loop in self._loops if loop.stage == stage]
            for loop in now:
                loop.stop.set()
            await self._finish([tasks[loop.name] for loop in now], stage_timeout)
        errors = [t.exception() for t in tasks.values() if not t.cancelled() and t.exception()]
        if errors:
            raise errors[0]  # type: ignore[misc]

    @staticmethod
    async def _finish(tasks: list[asyncio.Future[None]], timeout: float | None) -> None:
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=timeout)
        for task in late:  # cut short: its messages stay unacked and are redelivered
            log.warning("%r did not stop in time; cancelled", task)
            task.cancel()
        if late:
            await asyncio.wait(late)

    async def close(self) -> None:
        await self._closing.aclose()
