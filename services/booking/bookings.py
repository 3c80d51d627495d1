"""Use cases of the booking service: placing a booking in one transaction."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID, uuid4

import asyncpg

from services.booking import repository as repo
from services.booking.errors import IdempotencyKeyReused, InvalidBooking, NoAvailability, NotFound
from services.booking.schemas import Booking, BookingRequest
from shared.db.pool import Connection, acquire
from shared.events import BookingConfirmed

log = logging.getLogger(__name__)

# Conflicts PostgreSQL resolves by aborting one side; running the transaction again is safe.
RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
MAX_TRANSACTION_TRIES = 3


@dataclass(frozen=True)
class PlacedBooking:
    booking: Booking
    replayed: bool  # True when an Idempotency-Key returned an earlier booking


def request_hash(request: BookingRequest) -> str:
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def place_booking(
    pool: asyncpg.Pool,
    request: BookingRequest,
    *,
    idempotency_key: str | None = None,
    acquire_timeout: float = 5.0,
) -> PlacedBooking:
    for attempt in range(1, MAX_TRANSACTION_TRIES + 1):
        try:
            async with acquire(pool, acquire_timeout) as conn, conn.transaction():
                return await _place(conn, request, idempotency_key)
        except RETRYABLE as exc:
            if attempt == MAX_TRANSACTION_TRIES:
                raise
            log.info("booking transaction conflict (%r); trying again", exc)
    raise AssertionError("unreachable")


async def _place(
    conn: Connection, request: BookingRequest, idempotency_key: str | None
) -> PlacedBooking:
    if idempotency_key is not None:
        digest = request_hash(request)
        if not await repo.claim_idempotency_key(conn, idempotency_key, digest):
            return await _replay(conn, idempotency_key, digest)
    room = await repo.room_type(conn, request.hotel_id, request.room_type)
    if room is None:
        if not await repo.hotel_exists(conn, request.hotel_id):
            raise InvalidBooking(f"hotel {request.hotel_id} does not exist")
        raise InvalidBooking(f"hotel {request.hotel_id} has no room type {request.room_type!r}")
    taken = await repo.reserve_nights(
        conn, request.hotel_id, request.room_type, request.check_in, request.check_out
    )
    if len(taken) < request.nights:
        raise NoAvailability(
            f"no {request.room_type} room is free at hotel {request.hotel_id} "
            f"for the whole stay {request.check_in} to {request.check_out}"
        )
    total = (Decimal(room["price_per_night"]) * request.nights).quantize(Decimal("0.01"))
    row = await repo.insert_booking(
        conn,
        {
            "id": uuid4(),
            "status": "confirmed",
            **request.model_dump(),
            "nights": request.nights,
            "total_price": total,
            "currency": room["currency"],
        },
    )
    booking = Booking.model_validate(dict(row))
    await repo.add_to_outbox(conn, confirmed_event(booking, room["hotel_name"]))
    if idempotency_key is not None:
        await repo.attach_idempotency_key(conn, idempotency_key, booking.id)
    return PlacedBooking(booking, replayed=False)


async def _replay(conn: Connection, key: str, digest: str) -> PlacedBooking:
    record = await repo.idempotency_record(conn, key)
    assert record is not None
    if record["request_hash"] != digest:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request body"
        )
    row = await repo.get_booking(conn, record["booking_id"])
    assert row is not None
    return PlacedBooking(Booking.model_validate(dict(row)), replayed=True)


def confirmed_event(booking: Booking, hotel_name: str) -> BookingConfirmed:
    return BookingConfirmed(
        booking_id=booking.id,
        occurred_at=booking.created_at,
        hotel_id=booking.hotel_id,
        hotel_name=hotel_name,
        room_type=booking.room_type,
        check_in=booking.check_in,
        check_out=booking.check_out,
        nights=booking.nights,
        total_price=booking.total_price,
        currency=booking.currency,
        guest_name=booking.guest_name,
        guest_email=booking.guest_email,
    )


async def get_booking(
    pool: asyncpg.Pool, booking_id: UUID, acquire_timeout: float = 5.0
) -> Booking:
    async with acquire(pool, acquire_timeout) as conn:
        row = await repo.get_booking(conn, booking_id)
    if row is None:
        raise NotFound(f"booking {booking_id} not found")
    return Booking.model_validate(dict(row))
