"""SQL of the booking service. Every function takes the connection it runs on, so the caller
decides what shares a transaction."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

import asyncpg

from shared.db.pool import Connection
from shared.events import StayDetails

S = "booking"  # this service's schema

BOOKING_COLUMNS = (
    "id, status, hotel_id, room_type, check_in, check_out, guest_name, guest_email, nights, "
    "total_price, currency, created_at"
)
# What a booking event's stay_details are made of (shared/events.py StayDetails), from the
# hotel ``h`` and the room type ``r``.
STAY_DETAILS = (
    "r.name AS room_type_name, h.address AS hotel_address, h.phone AS hotel_phone, "
    "h.email AS hotel_email, h.check_in_from, h.check_out_until, h.cancellation_policy"
)
# The hashes of the booking's management tokens, read with it (services/booking/tokens.py).
_TOKEN_HASHES = f"ARRAY(SELECT token_hash FROM {S}.booking_tokens t WHERE t.booking_id = b.id)"


def stay_details(row: asyncpg.Record) -> StayDetails:
    """The event's stay_details from a row with STAY_DETAILS' columns."""
    return StayDetails.model_validate({name: row[name] for name in StayDetails.model_fields})


async def list_hotels(conn: Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT h.id, h.name, h.city, h.currency,
                   coalesce(json_agg(json_build_object(
                       'code', r.code, 'name', r.name,
                       'price_per_night', r.price_per_night, 'total_rooms', r.total_rooms)
                       ORDER BY r.code) FILTER (WHERE r.code IS NOT NULL), '[]')::text AS rooms
            FROM {S}.hotels h LEFT JOIN {S}.room_types r ON r.hotel_id = h.id
            GROUP BY h.id ORDER BY h.id"""
    )
    return [dict(row) for row in rows]


async def hotel_exists(conn: Connection, hotel_id: int) -> bool:
    return bool(await conn.fetchval(f"SELECT true FROM {S}.hotels WHERE id = $1", hotel_id))


async def availability(
    conn: Connection, hotel_id: int, check_in: date, check_out: date
) -> list[asyncpg.Record]:
    """One row per room type and night: how many rooms are free."""
    return await conn.fetch(
        f"""SELECT r.code, r.name, r.total_rooms, r.price_per_night, d.night::date AS night,
                   r.total_rooms - coalesce(n.reserved, 0) AS free
            FROM {S}.room_types r
            CROSS JOIN generate_series($2::date, $3::date - 1, interval '1 day') AS d(night)
            LEFT JOIN {S}.room_nights n
              ON n.hotel_id = r.hotel_id AND n.room_type = r.code AND n.night = d.night::date
            WHERE r.hotel_id = $1
            ORDER BY r.code, d.night""",
        hotel_id,
        check_in,
        check_out,
    )


async def free_stay(
    conn: Connection, nights: int, first: date, last: date
) -> asyncpg.Record | None:
    """The first stay of ``nights`` nights, starting between ``first`` and ``last``, with a
    room free every night: the earliest, then the lowest hotel id, then the cheapest type."""
    return await conn.fetchrow(
        f"""SELECT r.hotel_id, r.code, d.start::date AS check_in
            FROM generate_series($2::date, $3::date, interval '1 day') AS d(start)
            CROSS JOIN {S}.room_types r
            WHERE r.total_rooms > 0 AND NOT EXISTS (
                SELECT 1 FROM {S}.room_nights n
                WHERE n.hotel_id = r.hotel_id AND n.room_type = r.code
                  AND n.night >= d.start::date AND n.night < d.start::date + $1::integer
                  AND n.reserved >= n.capacity)
            ORDER BY d.start, r.hotel_id, r.price_per_night, r.code
            LIMIT 1""",
        nights,
        first,
        last,
    )


async def get_booking(conn: Connection, booking_id: UUID) -> asyncpg.Record | None:
    """The booking with ``token_hashes``."""
    return await conn.fetchrow(
        f"SELECT {BOOKING_COLUMNS}, {_TOKEN_HASHES} AS token_hashes FROM {S}.bookings b "
        "WHERE id = $1",
        booking_id,
    )


async def lock_booking(conn: Connection, booking_id: UUID) -> asyncpg.Record | None:
    """The booking with ``token_hashes``, ``hotel_name`` and STAY_DETAILS, locked for an
    update (the booking's row only)."""
    columns = ", ".join(f"b.{name}" for name in BOOKING_COLUMNS.split(", "))
    return await conn.fetchrow(
        f"""SELECT {columns}, {_TOKEN_HASHES} AS token_hashes, h.name AS hotel_name,
                   {STAY_DETAILS}
            FROM {S}.bookings b
            JOIN {S}.hotels h ON h.id = b.hotel_id
            JOIN {S}.room_types r ON r.hotel_id = b.hotel_id AND r.code = b.room_type
            WHERE b.id = $1 FOR UPDATE OF b""",
        booking_id,
    )


async def add_token(conn: Connection, booking_id: UUID, token_hash: bytes) -> None:
    await conn.execute(
        f"INSERT INTO {S}.booking_tokens (booking_id, token_hash) VALUES ($1, $2)",
        booking_id,
        token_hash,
    )


async def mark_cancelled(conn: Connection, booking_id: UUID) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"""UPDATE {S}.bookings SET status = 'cancelled', updated_at = now()
            WHERE id = $1 RETURNING {BOOKING_COLUMNS}""",
        booking_id,
    )
    assert row is not None
    return row


async def release_nights(
    conn: Connection, hotel_id: int, code: str, check_in: date, check_out: date
) -> None:
    """Give one room back for every night of the stay (in date order, like reserving)."""
    await conn.execute(
        f"""UPDATE {S}.room_nights SET reserved = reserved - 1
            WHERE (hotel_id, room_type, night) IN (
                SELECT hotel_id, room_type, night FROM {S}.room_nights
                WHERE hotel_id = $1 AND room_type = $2 AND night >= $3 AND night < $4
                ORDER BY night FOR UPDATE)""",
        hotel_id,
        code,
        check_in,
        check_out,
    )


async def voucher(conn: Connection, booking_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT code, pdf, voided_at FROM {S}.vouchers WHERE booking_id = $1", booking_id
    )


async def idempotency_record(conn: Connection, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT request_hash, booking_id FROM {S}.idempotency_keys WHERE key = $1", key
    )
