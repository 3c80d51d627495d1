"""asyncpg pools with every wait bounded, and driver errors translated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from shared.errors import DatabaseUnavailable, PoolBusy

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
    # The server restarting after a crash of one of its processes (57P02), or out of
    # connection slots (53300): unavailable for now, like the rest, not a fault of the request.
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    command_timeout: float = 10.0,
    connect_timeout: float = 5.0,
    init: Callable[[asyncpg.Connection[asyncpg.Record]], Coroutine[Any, Any, None]] | None = None,
) -> asyncpg.Pool:
    """``init``: called with each new connection (a test records statements with it)."""
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            command_timeout=command_timeout,
            timeout=connect_timeout,
            reset=_keep_session,
            init=init,
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
    """A pooled connection, or DatabaseUnavailable when none comes within ``timeout`` (its
    PoolBusy when every connection of the pool was in use: the process is busy, PostgreSQL
    may be fine)."""
    try:
        async with pool.acquire(timeout=timeout) as conn:
            yield conn
    except TimeoutError as exc:
        if pool.get_idle_size() == 0 and pool.get_size() >= pool.get_max_size():
            raise PoolBusy(f"all {pool.get_max_size()} pool connections in use: {exc!r}") from exc
        raise DatabaseUnavailable(f"PostgreSQL unavailable: {exc!r}") from exc
    except UNAVAILABLE_ERRORS as exc:
        raise DatabaseUnavailable(f"PostgreSQL unavailable: {exc!r}") from exc


@asynccontextmanager
async def acquire_patiently(
    pool: asyncpg.Pool, timeout: float = 5.0, *, on_wait: Callable[[], None] = lambda: None
) -> AsyncIterator[Connection]:
    """As :func:`acquire`, but waits for as long as the pool is merely busy: for a message,
    a wait for its own process's connections is no failed attempt (it would spend the retry
    budget, and park the message, for no fault of its own). PostgreSQL unreachable still
    raises DatabaseUnavailable."""
    while True:
        entered = False
        try:
            async with acquire(pool, timeout) as conn:
                entered = True
                yield conn
            return
        except PoolBusy:
            if entered:  # raised by the caller's own work, not by our wait
                raise
            on_wait()


async def warm(
    pool: asyncpg.Pool, prepare: Callable[[Connection], Awaitable[None]], timeout: float = 5.0
) -> None:
    """Open every connection of ``pool`` and run ``prepare`` on each (statements it should
    have ready), all of them held at once so that none is used twice."""
    async with AsyncExitStack() as held:
        connections = [
            await held.enter_async_context(acquire(pool, timeout))
            for _ in range(pool.get_max_size())
        ]
        for conn in connections:
            await prepare(conn)


async def close_pool(pool: asyncpg.Pool, timeout: float) -> None:
    """Close gracefully within ``timeout``, then terminate: a connection still held (a
    hung query) must not keep the process from exiting."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except TimeoutError:
        pool.terminate()
