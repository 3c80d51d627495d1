"""asyncpg pools with every wait bounded, and driver errors translated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from shared.errors import DatabaseUnavailable

# Errors that mean PostgreSQL is unreachable, restarting or too slow: retry later.
# What handlers and repositories receive: a pooled connection (generic only in the stubs).
if TYPE_CHECKING:
    Connection: TypeAlias = PoolConnectionProxy[asyncpg.Record]
else:
    Connection = PoolConnectionProxy

UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
)


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    command_timeout: float = 10.0,
    connect_timeout: float = 5.0,
) -> asyncpg.Pool:
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            command_timeout=command_timeout,
            timeout=connect_timeout,
            reset=_keep_session,
        )
    except UNAVAILABLE_ERRORS as exc:
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {exc!r}") from exc
    assert pool is not None
    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's default reset query (advisory unlock, CLOSE ALL, UNLISTEN,
    RESET ALL): one round trip less per acquire. Safe because no pooled connection keeps
    session state here (advisory locks are transaction-scoped, LISTEN has its own
    connection); asyncpg still rolls back a transaction left open before calling this."""


@asynccontextmanager
async def acquire(pool: asyncpg.Pool, timeout: float = 5.0) -> AsyncIterator[Connection]:
    """A pooled connection, or DatabaseUnavailable when none comes within ``timeout``."""
    try:
        async with pool.acquire(timeout=timeout) as conn:
            yield conn
    except UNAVAILABLE_ERRORS as exc:
        raise DatabaseUnavailable(f"PostgreSQL unavailable: {exc!r}") from exc


async def close_pool(pool: asyncpg.Pool, timeout: float) -> None:
    """Close gracefully within ``timeout``, then terminate: a connection still held (a
    hung query) must not keep the process from exiting."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except TimeoutError:
        pool.terminate()
