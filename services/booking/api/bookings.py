"""POST /bookings and GET /bookings/{id}."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from services.booking.bookings import cancel_booking, get_booking, get_voucher, place_booking
from services.booking.deps import (
    IdempotencyKeyHeader,
    MetricsDep,
    PoolDep,
    RelayDep,
    SettingsDep,
)
from services.booking.schemas import Booking, BookingRequest, ErrorBody

router = APIRouter(tags=["bookings"])


@router.post(
    "/bookings",
    status_code=201,
    summary="Book a room",
    description=(
        "Reserves one room of the type for every night, stores the booking and its "
        "BookingConfirmed event in one transaction, and answers at once: voucher, email "
        "and notifications happen afterwards, in their own services."
    ),
    responses={
        409: {"model": ErrorBody, "description": "No room of that type free every night"},
        413: {"model": ErrorBody, "description": "Body over 16 KiB"},
        422: {"description": "Invalid request, unknown hotel/room type, or reused key"},
        503: {"model": ErrorBody, "description": "Database unavailable; try again"},
    },
)
async def create_booking(
    body: BookingRequest,
    response: Response,
    pool: PoolDep,
    relay: RelayDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Booking:
    placed = await place_booking(
        pool, body, idempotency_key=idempotency_key, acquire_timeout=settings.db_acquire_timeout
    )
    response.headers["Location"] = f"/bookings/{placed.booking.id}"
    if placed.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    else:
        metrics.bookings_created.inc()
        relay.wake()
    return placed.booking


@router.get(
    "/bookings/{booking_id}",
    summary="Get a booking with its fulfilment status",
    responses={404: {"model": ErrorBody}},
)
async def read_booking(booking_id: UUID, pool: PoolDep, settings: SettingsDep) -> Booking:
    return await get_booking(pool, booking_id, settings.db_acquire_timeout)


@router.post(
    "/bookings/{booking_id}/cancel",
    summary="Cancel a booking",
    description=(
        "Returns the nights to the inventory and sends BookingCancelled to the consumers. "
        "Cancelling again changes nothing and returns the booking."
    ),
    responses={404: {"model": ErrorBody}},
)
async def cancel(
    booking_id: UUID, pool: PoolDep, relay: RelayDep, settings: SettingsDep
) -> Booking:
    booking = await cancel_booking(pool, booking_id, settings.db_acquire_timeout)
    relay.wake()
    return booking


@router.get(
    "/bookings/{booking_id}/voucher",
    summary="Download the booking's PDF voucher",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "The voucher"},
        404: {"model": ErrorBody, "description": "No such booking, or voucher not issued yet"},
        410: {"model": ErrorBody, "description": "Voided: the booking was cancelled"},
    },
)
async def voucher(booking_id: UUID, pool: PoolDep, settings: SettingsDep) -> Response:
    code, pdf = await get_voucher(pool, booking_id, settings.db_acquire_timeout)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="voucher-{code}.pdf"'},
    )
