"""Start-up helpers: wait for PostgreSQL rather than crash when it is not up yet."""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

from shared.db.pool import create_pool
from shared.errors import DatabaseUnavailable
from shared.settings import CommonSettings

log = logging.getLogger(__name__)


async def connect_database(
    settings: CommonSettings, *, max_size: int | None = None
) -> asyncpg.Pool:
    deadline = time.monotonic() + settings.startup_timeout
    delay = 0.2
    while True:
        try:
            return await create_pool(
                settings.database_url,
                max_size=max_size or settings.db_pool_size,
                command_timeout=settings.db_command_timeout,
                connect_timeout=settings.db_acquire_timeout,
            )
        except DatabaseUnavailable as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("PostgreSQL not reachable yet (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
