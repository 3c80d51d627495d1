"""The booking service opens its whole pool, and prepares a booking's statements on every
connection, before it takes a request (DB_POOL_WARM): opened and prepared under a first
burst instead, they made that burst's first second wait (README, "What limits it", 5.)."""

from __future__ import annotations

import asyncpg

from shared.db.pool import Connection, warm
from tests.support.infra import TestEnv
from tests.support.stack import booking_api, booking_body

POOL = 4
# Split, so that this query's own text (asyncpg prepares it too) does not match.
PREPARED = """SELECT count(*) FROM pg_prepared_statements
              WHERE statement LIKE '%INSERT INTO ' || 'booking.idempotency_keys%'"""
WRITTEN = """SELECT (SELECT count(*) FROM booking.bookings) + (SELECT count(*) FROM booking.outbox)
                  + (SELECT count(*) FROM booking.idempotency_keys)
                  + (SELECT count(*) FROM booking.room_nights)"""


async def _prepared_on_each(pool: asyncpg.Pool) -> list[int]:
    """How many prepared booking statements each connection of the pool has (``warm`` holds
    them all at once, so that none is asked twice)."""
    found: list[int] = []

    async def count(conn: Connection) -> None:
        found.append(int(await conn.fetchval(PREPARED)))

    await warm(pool, count)
    return found


async def test_the_booking_service_opens_its_pool_and_prepares_each_connection_before_serving(
    env: TestEnv,
) -> None:
    async with booking_api(env, db_pool_size=POOL) as (client, app):
        pool: asyncpg.Pool = app.state.pool
        assert pool.get_size() == POOL
        assert await _prepared_on_each(pool) == [1] * POOL
        # The statements ran for a hotel that does not exist: nothing was written.
        assert await pool.fetchval(WRITTEN) == 0
        answer = await client.post("/bookings", json=booking_body())
        assert answer.status_code == 201, answer.text


async def test_without_warming_the_pool_opens_connections_as_requests_need_them(
    env: TestEnv,
) -> None:
    async with booking_api(env, db_pool_size=POOL, db_pool_warm=False) as (_, app):
        pool: asyncpg.Pool = app.state.pool
        assert pool.get_size() < POOL
        # The connections it has were opened without the booking's statements prepared.
        assert set(await _prepared_on_each(pool)) == {0}
