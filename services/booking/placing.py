"""A new booking in one statement, one round trip to PostgreSQL: the idempotency claim, one
room for every night of the stay, the booking, its first token and its ``BookingConfirmed``
outbox row.

The statement runs outside any transaction (a single statement is atomic on its own), which
saves the BEGIN and COMMIT round trips. Its parts are gated on each other, so it writes
either everything or nothing:

* the event needs the hotel's name, currency, price and stay details before the statement
  runs, so they come from :class:`RoomFactsCache`, checked inside the statement against a
  fingerprint of the hotel's and room type's rows: when either changed since they were read,
  the statement writes nothing and answers :attr:`Outcome.STALE_FACTS` (the caller reads them
  again and places the booking again);
* a taken Idempotency-Key writes nothing (:attr:`Outcome.KEY_TAKEN`: the caller replays);
* when a night could not be reserved (the last room went to a concurrent booking),
  ``all_nights_taken`` (migration 010) raises SQLSTATE ``HB409`` and PostgreSQL undoes the
  nights already taken: :class:`~services.booking.errors.NoAvailability`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any

import asyncpg

from services.booking.repository import BOOKING_COLUMNS, STAY_DETAILS, S, stay_details
from shared.db.pool import Connection
from shared.events import StayDetails
from shared.outbox.rows import OutboxRow, insert_for_each_statement

NO_ROOM_FREE_SQLSTATE = "HB409"  # raised by all_nights_taken (010_place_in_one_statement.sql)
# Any change to the hotel's or the room type's row changes it.
_FINGERPRINT = "md5(row(h.*, r.*)::text)"
_ROOM = f"""SELECT h.name AS hotel_name, h.currency, r.price_per_night, {STAY_DETAILS},
               {_FINGERPRINT} AS fingerprint
            FROM {S}.hotels h JOIN {S}.room_types r ON r.hotel_id = h.id
            WHERE h.id = $1 AND r.code = $2"""

# The booking's columns, in the order place() passes them ($9 onwards).
BOOKING_FIELDS = (
    "id",
    "status",
    "hotel_id",
    "room_type",
    "check_in",
    "check_out",
    "guest_name",
    "guest_email",
    "nights",
    "total_price",
    "currency",
)
_B, _O = 9, 9 + len(BOOKING_FIELDS)
_T = _O + len(OutboxRow._fields)


def _params(first: int, count: int) -> str:
    return ", ".join(f"${first + i}" for i in range(count))


# $1 hotel, $2 room type, $3 check-in, $4 check-out, $5 fingerprint, $6 Idempotency-Key
# (NULL: none), $7 the request's hash, $8 nights; then the booking, the outbox row, the token.
PLACE = f"""
WITH room AS ({_ROOM}),
current AS (SELECT 1 FROM room WHERE fingerprint = $5),
claim AS (
    INSERT INTO {S}.idempotency_keys (key, request_hash, booking_id)
    SELECT $6, $7, $9 FROM current WHERE $6::text IS NOT NULL
    ON CONFLICT (key) DO NOTHING RETURNING key),
go AS (SELECT 1 FROM current WHERE $6::text IS NULL OR EXISTS (SELECT 1 FROM claim)),
taken AS (
    INSERT INTO {S}.room_nights AS n (hotel_id, room_type, night, reserved, capacity)
    SELECT r.hotel_id, r.code, d.night::date, 1, r.total_rooms
    FROM {S}.room_types r
    CROSS JOIN generate_series($3::date, $4::date - 1, interval '1 day') AS d(night)
    WHERE r.hotel_id = $1 AND r.code = $2 AND r.total_rooms > 0 AND EXISTS (SELECT 1 FROM go)
    ORDER BY d.night
    ON CONFLICT (hotel_id, room_type, night)
    DO UPDATE SET reserved = n.reserved + 1 WHERE n.reserved < n.capacity
    RETURNING n.night),
b AS (
    INSERT INTO {S}.bookings ({", ".join(BOOKING_FIELDS)})
    SELECT {_params(_B, len(BOOKING_FIELDS))} FROM go
    WHERE {S}.all_nights_taken((SELECT count(*) FROM taken), $8)
    RETURNING {BOOKING_COLUMNS}),
o AS ({insert_for_each_statement(S, "b", first=_O)}),
t AS (INSERT INTO {S}.booking_tokens (booking_id, token_hash) SELECT id, ${_T} FROM b)
SELECT (SELECT fingerprint FROM room) AS fingerprint, b.*
FROM (VALUES (1)) AS one LEFT JOIN b ON true"""


class Outcome(Enum):
    PLACED = "placed"
    NO_SUCH_ROOM_TYPE = "no such room type"
    STALE_FACTS = "the hotel or room type changed since its facts were read"
    KEY_TAKEN = "the Idempotency-Key was used before"


@dataclass(frozen=True)
class RoomFacts:
    """What a booking's event says of its hotel and room type, and the fingerprint of the
    rows it was read from."""

    hotel_name: str
    currency: str
    price_per_night: Decimal
    stay_details: StayDetails
    fingerprint: str


class RoomFactsCache:
    """The facts of the room types booked lately, one process's: read once, then checked by
    every booking's statement (a stale entry costs one more read, never a wrong event)."""

    def __init__(self, limit: int = 10_000) -> None:
        self._facts: dict[tuple[int, str], RoomFacts] = {}
        self._limit = limit  # only existing room types get in, but keep it bounded anyway

    def get(self, hotel_id: int, code: str) -> RoomFacts | None:
        return self._facts.get((hotel_id, code))

    def forget(self, hotel_id: int, code: str) -> None:
        self._facts.pop((hotel_id, code), None)

    async def read(self, conn: Connection, hotel_id: int, code: str) -> RoomFacts | None:
        """Read the facts again (None: no such room type)."""
        row = await conn.fetchrow(_ROOM, hotel_id, code)
        if row is None:
            self.forget(hotel_id, code)
            return None
        facts = RoomFacts(
            row["hotel_name"],
            row["currency"],
            row["price_per_night"],
            stay_details(row),
            row["fingerprint"],
        )
        if len(self._facts) >= self._limit:
            self._facts.clear()
        self._facts[(hotel_id, code)] = facts
        return facts


@dataclass(frozen=True)
class Placement:
    outcome: Outcome
    booking: asyncpg.Record | None = None  # the booking's row, when PLACED


async def place(
    conn: Connection,
    stay: Sequence[Any],
    facts: RoomFacts,
    claim: tuple[str, str] | None,
    booking: dict[str, Any],
    event: OutboxRow,
    token_hash: bytes,
) -> Placement:
    """Run the statement. ``stay``: hotel id, room type, check-in, check-out, nights;
    ``claim``: the Idempotency-Key and the request's hash, or None."""
    hotel_id, code, check_in, check_out, nights = stay
    key, digest = claim or (None, None)
    row = await conn.fetchrow(
        PLACE,
        hotel_id,
        code,
        check_in,
        check_out,
        facts.fingerprint,
        key,
        digest,
        nights,
        *(booking[name] for name in BOOKING_FIELDS),
        *event,
        token_hash,
    )
    assert row is not None  # the statement always answers one row
    if row["id"] is not None:
        return Placement(Outcome.PLACED, row)
    if row["fingerprint"] is None:
        return Placement(Outcome.NO_SUCH_ROOM_TYPE)
    if row["fingerprint"] != facts.fingerprint:
        return Placement(Outcome.STALE_FACTS)
    return Placement(Outcome.KEY_TAKEN)


async def prepare(conn: Connection) -> None:
    """Prepare the statements of a booking on ``conn`` (asyncpg keeps them per connection,
    PostgreSQL its plans per session) by running them for a hotel that does not exist: the
    statement then writes nothing."""
    await conn.fetchrow(_ROOM, 0, "")
    stay = (0, "", date(2000, 1, 1), date(2000, 1, 2), "", None, None, 1)
    await conn.fetchrow(PLACE, *stay, *[None] * (_T - len(stay)))
