"""Waiting on several asyncio events at once."""

from __future__ import annotations

import asyncio


async def first_of(*events: asyncio.Event, timeout: float | None = None) -> None:
    """Return as soon as any of ``events`` is set, or after ``timeout`` seconds (a sleep
    that a stop cuts short); the other waits are cancelled."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
