"""Placing a booking in one statement (services/booking/placing.py) against a real
PostgreSQL: one round trip once the room's facts are known, all or nothing, and never a
booking priced from facts that changed after they were read."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from decimal import Decimal

import asyncpg
import pytest

from services.booking.errors import NoAvailability
from services.booking.placing import RoomFactsCache
from services.booking.schemas import BookingRequest
from services.booking.use_cases import place_booking
from shared.db.pool import create_pool
from tests.support.infra import TestEnv
from tests.support.stack import booking_api, fetchval


def _request(starts_in_days: int, nights: int, room_type: str = "deluxe") -> BookingRequest:
    check_in = date.today() + timedelta(days=starts_in_days)
    return BookingRequest(
        hotel_id=3,
        room_type=room_type,
        check_in=check_in,
        check_out=check_in + timedelta(days=nights),
        guest_name="Ada Lovelace",
        guest_email="ada@example.com",
    )


@asynccontextmanager
async def _counting_pool(env: TestEnv) -> AsyncIterator[tuple[asyncpg.Pool, list[str]]]:
    """A pool on the migrated database whose every statement is recorded."""
    statements: list[str] = []

    async def record(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(lambda record: statements.append(record.query))

    async with booking_api(env):
        pool = await create_pool(env.database_url, init=record)
        try:
            yield pool, statements
        finally:
            await pool.close()


async def test_a_booking_whose_room_facts_are_known_is_one_statement(env: TestEnv) -> None:
    rooms = RoomFactsCache()
    async with _counting_pool(env) as (pool, statements):
        await place_booking(pool, _request(30, 2), rooms=rooms)
        first = list(statements)
        statements.clear()
        await place_booking(pool, _request(40, 2), rooms=rooms)
        with_key = await place_booking(pool, _request(50, 1), idempotency_key="k-1", rooms=rooms)
    assert len(first) == 2, first  # the room's facts, then the booking
    assert len(statements) == 2  # one each
    assert not with_key.replayed


async def test_a_stay_whose_last_night_is_full_reserves_none_of_its_nights(env: TestEnv) -> None:
    async with _counting_pool(env) as (pool, _):
        for _guest in range(5):  # hotel 3 has five deluxe rooms: the stay's third night fills
            await place_booking(pool, _request(72, 1))
        with pytest.raises(NoAvailability, match="no deluxe room is free"):
            await place_booking(pool, _request(70, 3), idempotency_key="k-2")
    reserved = await fetchval(
        env,
        "SELECT coalesce(sum(reserved), 0) FROM booking.room_nights WHERE night < $1",
        date.today() + timedelta(days=72),
    )
    assert reserved == 0
    assert await fetchval(env, "SELECT count(*) FROM booking.idempotency_keys") == 0
    assert await fetchval(env, "SELECT count(*) FROM booking.bookings") == 5


async def test_a_price_changed_after_it_was_read_is_the_price_booked_and_announced(
    env: TestEnv,
) -> None:
    rooms = RoomFactsCache()
    async with _counting_pool(env) as (pool, _):
        before = await place_booking(pool, _request(30, 2), rooms=rooms)
        async with pool.acquire() as conn:
            await conn.execute(
                "UPDATE booking.room_types SET price_per_night = 99.50"
                " WHERE hotel_id = 3 AND code = 'deluxe'"
            )
            await conn.execute("UPDATE booking.hotels SET name = 'Harbour Bay' WHERE id = 3")
        after = await place_booking(pool, _request(40, 2), rooms=rooms)
    assert before.booking.total_price != Decimal("199.00")
    assert after.booking.total_price == Decimal("199.00")
    body = await fetchval(
        env, "SELECT body FROM booking.outbox WHERE booking_id = $1", after.booking.id
    )
    event = json.loads(body)
    assert (event["total_price"], event["hotel_name"]) == ("199.00", "Harbour Bay")
