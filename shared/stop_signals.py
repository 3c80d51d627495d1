"""SIGTERM and SIGINT from a process's first line to its last.

A supervisor (the local runner, Docker, Kubernetes) may stop a process that is still
importing its modules or connecting to PostgreSQL and RabbitMQ: a replica scaled up and
down again at once, Ctrl-C during start-up. Python's default action would end it with
-15 (or a KeyboardInterrupt traceback) and none of its closing steps. So each entry point
calls :func:`remember` before its heavy imports; a signal that arrives before the event
loop runs is kept, and :func:`stop_event` hands it to the loop as an ``asyncio.Event``
that is already set. Nothing here imports more than the standard library, so that
:func:`remember` runs within milliseconds of the interpreter starting.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable
from types import FrameType
from typing import TypeVar

T = TypeVar("T")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_received: list[int] = []


def _keep(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)


def remember() -> None:
    """From now until :func:`stop_event`, a stop signal is remembered instead of fatal."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _keep)


def stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT from now on, in the running loop; already set if
    one arrived before."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    if _received:
        stop.set()
    return stop


async def unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> T | None:
    """``work``'s result; or None, with ``work`` cancelled, if ``stop`` is set first. For
    start-up steps that may wait long (a database still starting), which a stop signal
    must cut short."""
    working = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait([working, stopped], return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if working.done():
        return working.result()
    working.cancel()
    await asyncio.wait([working])
    return None
