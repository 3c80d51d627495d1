"""POST /bookings and GET /bookings/{id}."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Response

from services.booking.api import examples
from services.booking.api.examples import (
    NOT_FOUND,
    NOT_JSON,
    RATE_LIMITED,
    TOKEN_REQUIRED,
    TOO_LARGE,
    UNAVAILABLE,
    error,
    ok,
    validation_error,
)
from services.booking.api.refusals import check_horizon
from services.booking.deps import (
    ADDRESS_RATE_LIMIT,
    BookingTokenDep,
    DeskDep,
    IdempotencyKeyHeader,
    PoolDep,
    RelayDep,
    SettingsDep,
)
from services.booking.errors import NoAvailability, NotFound, VoucherVoided
from services.booking.schemas import Booking, BookingCreated, BookingRequest, BookingStatus
from services.booking.use_cases import cancel_booking, get_booking, get_voucher, place_booking

router = APIRouter(tags=["bookings"])


def _link(operation: str, description: str) -> dict[str, Any]:
    return {
        "operationRef": f"#/paths/~1bookings~1{{booking_id}}{operation}",
        "parameters": {"booking_id": "$response.body#/id"},
        "description": description,
    }


# OpenAPI links: what a client (and schemathesis' stateful phase) can do with a new booking.
CREATED_LINKS = {
    "GetBooking": _link("/get", "Read the new booking and its fulfilment"),
    "CancelBooking": _link("~1cancel/post", "Cancel the new booking"),
    "GetVoucher": _link("~1voucher/get", "Download its voucher once issued"),
}


@router.post(
    "/bookings",
    status_code=201,
    response_model=BookingCreated,
    summary="Book a room",
    description=(
        "Reserves one room of the type for every night, stores the booking and its "
        "BookingConfirmed event in one transaction, and answers at once: voucher, email "
        "and notifications happen afterwards, in their own services. The answer carries "
        "the booking's management_token, once: keep it (X-Booking-Token) to see the guest's "
        "details, download the voucher or cancel. A replay with the same Idempotency-Key "
        "answers with a new token, which works beside the first."
    ),
    dependencies=[ADDRESS_RATE_LIMIT],
    responses={
        201: {
            **ok(examples.created(), "Booked; Location names the new booking"),
            "headers": {
                "Location": {
                    "description": "The new booking: /bookings/{id}",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
            "links": CREATED_LINKS,
        },
        400: NOT_JSON,
        409: error(
            "No room of that type free every night",
            "no standard room is free at hotel 1 for the whole stay 2027-03-01 to 2027-03-04",
            NoAvailability,
        ),
        413: TOO_LARGE,
        422: validation_error(
            "Value error, check_out must be after check_in (also: check_in beyond the "
            "booking horizon; as one sentence: unknown hotel or room type, Idempotency-Key "
            "reused with another body)",
            "body",
        ),
        429: RATE_LIMITED,
        503: UNAVAILABLE,
    },
)
async def create_booking(
    body: BookingRequest, desk: DeskDep, idempotency_key: IdempotencyKeyHeader = None
) -> Response:
    check_horizon(body.check_in, desk.settings.booking_horizon_days, "body", "check_in")
    placed = await place_booking(
        desk.pool,
        body,
        idempotency_key=idempotency_key,
        acquire_timeout=desk.settings.db_acquire_timeout,
        hold=desk.limits.hold_for(body.guest_email),
        rooms=desk.rooms,
    )
    headers = {"Location": f"/bookings/{placed.booking.id}"}
    if placed.replayed:
        headers["Idempotent-Replayed"] = "true"
    else:
        desk.metrics.bookings_created.inc()
        desk.relay.wake()
    # Serialised here, once: the model was validated when it was built, and FastAPI would
    # validate and serialise it again through response_model.
    body_json = placed.booking.model_dump_json()
    return Response(body_json, 201, headers, media_type="application/json")


@router.get(
    "/bookings/{booking_id}",
    summary="Get a booking with its fulfilment status",
    description=(
        "With the booking's management token (X-Booking-Token), the whole booking. Without "
        "it, or with another, its status and fulfilment only: no guest details."
    ),
    response_model=Booking | BookingStatus,
    # The token is optional here: {} ("no credentials") joins the alternatives FastAPI lists.
    openapi_extra={"security": [{}]},
    responses={
        200: {
            "description": "The booking; without its token, status and fulfilment only",
            "content": {
                "application/json": {
                    "examples": {
                        "with the token": {"value": examples.booking()},
                        "without it": {"value": examples.status_only()},
                    }
                }
            },
        },
        404: NOT_FOUND,
        422: validation_error("Input should be a valid UUID", "path", "booking_id"),
        503: UNAVAILABLE,
    },
)
async def read_booking(
    booking_id: UUID, pool: PoolDep, settings: SettingsDep, token: BookingTokenDep
) -> Booking | BookingStatus:
    return await get_booking(pool, booking_id, token, settings.db_acquire_timeout)


@router.post(
    "/bookings/{booking_id}/cancel",
    summary="Cancel a booking",
    description=(
        "Returns the nights to the inventory and sends BookingCancelled to the consumers. "
        "Cancelling again changes nothing and returns the booking. Needs the booking's "
        "management token (X-Booking-Token): 401 without it or with another."
    ),
    responses={
        200: ok({**examples.booking(), "status": "cancelled"}, "Cancelled"),
        401: TOKEN_REQUIRED,
        404: NOT_FOUND,
        422: validation_error("Input should be a valid UUID", "path", "booking_id"),
        503: UNAVAILABLE,
    },
)
async def cancel(
    booking_id: UUID, pool: PoolDep, relay: RelayDep, settings: SettingsDep, token: BookingTokenDep
) -> Booking:
    booking = await cancel_booking(pool, booking_id, token, settings.db_acquire_timeout)
    relay.wake()
    return booking


@router.get(
    "/bookings/{booking_id}/voucher",
    summary="Download the booking's PDF voucher",
    description="Needs the booking's management token (X-Booking-Token).",
    response_class=Response,
    responses={
        200: {
            "content": {
                "application/pdf": {
                    # OpenAPI 3.1's binary body; format: binary is what Swagger UI reads.
                    "schema": {
                        "type": "string",
                        "format": "binary",
                        "contentMediaType": "application/pdf",
                    },
                    "example": "%PDF-1.3 ... (the voucher, binary)",
                }
            },
            "description": "The voucher, as a file to save (the docs UI offers a download)",
            "headers": {
                "Content-Disposition": {
                    "description": f'attachment; filename="voucher-{examples.VOUCHER_CODE}.pdf"',
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
        },
        401: TOKEN_REQUIRED,
        404: error(
            "No such booking, or voucher not issued yet",
            f"the voucher for booking {examples.BOOKING_ID} is not issued yet",
            NotFound,
        ),
        410: error(
            "Voided: the booking was cancelled",
            f"voucher {examples.VOUCHER_CODE} was voided at 2027-02-01T10:00:00+00:00: "
            "the booking was cancelled",
            VoucherVoided,
        ),
        422: validation_error("Input should be a valid UUID", "path", "booking_id"),
        503: UNAVAILABLE,
    },
)
async def voucher(
    booking_id: UUID, pool: PoolDep, settings: SettingsDep, token: BookingTokenDep
) -> Response:
    code, pdf = await get_voucher(pool, booking_id, token, settings.db_acquire_timeout)
    return Response(
        pdf,
        media_type="application/pdf",
        # attachment: the docs UI (Swagger UI) offers a download link for it, where a PDF
        # shown inline was "Unrecognized response type"; browsers save it as this file.
        headers={"Content-Disposition": f'attachment; filename="voucher-{code}.pdf"'},
    )
