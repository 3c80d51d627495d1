"""Use cases of the booking service: placing a booking in one transaction; reading,
cancelling and the voucher, the last two (and the guest's details) for the holder of the
booking's management token only."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar
from uuid import UUID, uuid4

import asyncpg

from services.booking import placing, tokens
from services.booking import repository as repo
from services.booking.errors import (
    IdempotencyKeyReused,
    InvalidBooking,
    NoAvailability,
    NotFound,
    RateLimited,
    TokenRequired,
    VoucherVoided,
)
from services.booking.fulfilment import progress_of
from services.booking.placing import Outcome, RoomFacts, RoomFactsCache
from services.booking.rate_limit import Hold
from services.booking.schemas import Booking, BookingCreated, BookingRequest, BookingStatus
from shared.db.pool import Connection, acquire
from shared.errors import DatabaseUnavailable
from shared.events import BookingCancelled, BookingConfirmed, StayDetails
from shared.outbox.rows import OutboxRow, write_rows

log = logging.getLogger(__name__)

# Conflicts PostgreSQL resolves by aborting one side; running the transaction again is safe.
RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
MAX_TRANSACTION_TRIES = 3
BookingEvent = TypeVar("BookingEvent", BookingConfirmed, BookingCancelled)


@dataclass(frozen=True)
class PlacedBooking:
    booking: BookingCreated
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
    hold: Hold | None = None,
    rooms: RoomFactsCache | None = None,
) -> PlacedBooking:
    """``hold``: the per-email rate limit, taken only for a new booking (not a replay) and
    given back when none is made. ``rooms``: the process's cache of room facts (none: read
    them for this booking)."""
    rooms = rooms or RoomFactsCache()
    claim = None if idempotency_key is None else (idempotency_key, request_hash(request))
    try:
        async with acquire(pool, acquire_timeout) as conn:
            if hold is not None:
                await _take(conn, hold, claim)
            for attempt in range(1, MAX_TRANSACTION_TRIES + 1):
                try:
                    placed = await _place(conn, request, claim, rooms)
                    break
                except RETRYABLE as exc:
                    if attempt == MAX_TRANSACTION_TRIES:
                        raise
                    log.info("booking statement conflict (%r); trying again", exc)
            if placed.replayed and hold is not None:
                hold.give_back()
            return placed
    except BaseException:
        if hold is not None:
            hold.give_back()
        raise


async def _take(conn: Connection, hold: Hold, claim: tuple[str, str] | None) -> None:
    """Take the guest's share of the rate limit, unless the request replays an earlier
    booking: a replay is answered even over the limit, as it makes no new booking."""
    try:
        hold.take()
    except RateLimited:
        if claim is None or await repo.idempotency_record(conn, claim[0]) is None:
            raise


async def _place(
    conn: Connection,
    request: BookingRequest,
    claim: tuple[str, str] | None,
    rooms: RoomFactsCache,
) -> PlacedBooking:
    """One statement in the common case; two when the room's facts must be read first."""
    stay = (request.hotel_id, request.room_type, request.check_in, request.check_out)
    facts = rooms.get(request.hotel_id, request.room_type)
    for _ in range(MAX_TRANSACTION_TRIES):
        if facts is None:
            facts = await rooms.read(conn, request.hotel_id, request.room_type)
        if facts is None:
            raise await _no_such_room_type(conn, request)
        booking, confirmed, (token, token_hash) = _new_booking(request, facts)
        try:
            placement = await placing.place(
                conn, (*stay, request.nights), facts, claim, booking, confirmed, token_hash
            )
        except asyncpg.PostgresError as exc:
            if exc.sqlstate == placing.NO_ROOM_FREE_SQLSTATE:
                raise _no_availability(request) from exc
            raise
        if placement.outcome is Outcome.PLACED:
            assert placement.booking is not None
            created = {**dict(placement.booking), "management_token": token}
            return PlacedBooking(BookingCreated.model_validate(created), replayed=False)
        if placement.outcome is Outcome.KEY_TAKEN:
            assert claim is not None
            async with conn.transaction():
                return await _replay(conn, *claim)
        facts = None  # missing or stale: read them again
    raise DatabaseUnavailable("the room type kept changing while this booking was placed")


def _new_booking(
    request: BookingRequest, facts: RoomFacts
) -> tuple[dict[str, object], OutboxRow, tuple[str, bytes]]:
    """The booking's row, its event's outbox row, its management token and the token's hash."""
    total = (facts.price_per_night * request.nights).quantize(Decimal("0.01"))
    request_facts = request.model_dump()
    booking_id = uuid4()
    confirmed = BookingConfirmed(
        booking_id=booking_id,
        hotel_name=facts.hotel_name,
        nights=request.nights,
        total_price=total,
        currency=facts.currency,
        stay_details=facts.stay_details,
        **request_facts,
    )
    booking = {
        "id": booking_id,
        "status": "confirmed",
        **request_facts,
        "nights": request.nights,
        "total_price": total,
        "currency": facts.currency,
    }
    return booking, OutboxRow.of(confirmed), tokens.new_token()


async def _no_such_room_type(conn: Connection, request: BookingRequest) -> InvalidBooking:
    if not await repo.hotel_exists(conn, request.hotel_id):
        return InvalidBooking(f"hotel {request.hotel_id} does not exist")
    return InvalidBooking(f"hotel {request.hotel_id} has no room type {request.room_type!r}")


def _no_availability(request: BookingRequest) -> NoAvailability:
    return NoAvailability(
        f"no {request.room_type} room is free at hotel {request.hotel_id} "
        f"for the whole stay {request.check_in} to {request.check_out}"
    )


async def _replay(conn: Connection, key: str, digest: str) -> PlacedBooking:
    record = await repo.idempotency_record(conn, key)
    assert record is not None
    if record["request_hash"] != digest:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request body"
        )
    row = await repo.get_booking(conn, record["booking_id"])
    assert row is not None
    # The first answer's token cannot be recovered from its hash: this answer carries a
    # new one, which works beside it.
    token, token_hash = tokens.new_token()
    await repo.add_token(conn, row["id"], token_hash)
    booking = await _with_fulfilment(conn, row)
    created = BookingCreated(**booking.model_dump(), management_token=token)
    return PlacedBooking(created, replayed=True)


def booking_event(
    event_class: type[BookingEvent],
    booking: Booking,
    hotel_name: str,
    details: StayDetails | None = None,
) -> BookingEvent:
    return event_class(
        stay_details=details,
        booking_id=booking.id,
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
    pool: asyncpg.Pool, booking_id: UUID, token: str | None, acquire_timeout: float = 5.0
) -> Booking | BookingStatus:
    """The whole booking for the holder of its token; status and fulfilment for anyone."""
    async with acquire(pool, acquire_timeout) as conn:
        row = await repo.get_booking(conn, booking_id)
        if row is None:
            raise NotFound(f"booking {booking_id} not found")
        booking = await _with_fulfilment(conn, row)
    if tokens.holds(token, row["token_hashes"]):
        return booking
    return BookingStatus(id=booking.id, status=booking.status, fulfilment=booking.fulfilment)


def _authorise(row: asyncpg.Record, token: str | None) -> None:
    """TokenRequired unless ``token`` is one of the booking's. Asked after the booking is
    found, so a caller learns that it exists, which GET /bookings/{id} tells anyone."""
    if token is None:
        raise TokenRequired("this needs the booking's management token (X-Booking-Token)")
    if not tokens.holds(token, row["token_hashes"]):
        raise TokenRequired("this is not the booking's management token")


async def _with_fulfilment(conn: Connection, row: asyncpg.Record) -> Booking:
    fulfilment = await progress_of(conn, row["id"])
    return Booking.model_validate({**dict(row), "fulfilment": fulfilment})


async def cancel_booking(
    pool: asyncpg.Pool, booking_id: UUID, token: str | None, acquire_timeout: float = 5.0
) -> Booking:
    """Cancel once: return the nights and send BookingCancelled through the outbox. Cancelling
    a cancelled booking changes nothing and returns it as it is."""
    async with acquire(pool, acquire_timeout) as conn, conn.transaction():
        row = await repo.lock_booking(conn, booking_id)
        if row is None:
            raise NotFound(f"booking {booking_id} not found")
        _authorise(row, token)
        if row["status"] == "cancelled":
            return await _with_fulfilment(conn, row)
        locked, hotel_name = row, row["hotel_name"]
        row = await repo.mark_cancelled(conn, booking_id)
        await repo.release_nights(
            conn, row["hotel_id"], row["room_type"], row["check_in"], row["check_out"]
        )
        booking = Booking.model_validate(dict(row))
        cancelled = booking_event(BookingCancelled, booking, hotel_name, repo.stay_details(locked))
        await write_rows(conn, "booking", [OutboxRow.of(cancelled)])
        return await _with_fulfilment(conn, row)


async def get_voucher(
    pool: asyncpg.Pool, booking_id: UUID, token: str | None, acquire_timeout: float = 5.0
) -> tuple[str, bytes]:
    """The voucher's code and PDF; NotFound before it is issued, VoucherVoided after."""
    async with acquire(pool, acquire_timeout) as conn:
        booking = await repo.get_booking(conn, booking_id)
        if booking is None:
            raise NotFound(f"booking {booking_id} not found")
        _authorise(booking, token)
        row = await repo.voucher(conn, booking_id)
    if row is not None and row["voided_at"] is not None:
        raise VoucherVoided(
            f"voucher {row['code']} was voided at {row['voided_at'].isoformat()}: "
            "the booking was cancelled"
        )
    if row is None or row["pdf"] is None:
        raise NotFound(f"the voucher for booking {booking_id} is not issued yet")
    return row["code"], bytes(row["pdf"])
