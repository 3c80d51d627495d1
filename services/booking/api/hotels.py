"""GET /hotels and availability."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from itertools import groupby
from typing import Annotated

from fastapi import APIRouter, Path

from services.booking import repository as repo
from services.booking.api import examples
from services.booking.api.examples import UNAVAILABLE, error, ok, validation_error
from services.booking.api.refusals import check_horizon, refuse
from services.booking.deps import PoolDep, SettingsDep
from services.booking.errors import NotFound
from services.booking.schemas import (
    PG_INT_MAX,
    Availability,
    Hotel,
    NightAvailability,
    RoomTypeAvailability,
)
from shared.db.pool import acquire

router = APIRouter(tags=["hotels"])
MAX_AVAILABILITY_DAYS = 366
HotelId = Annotated[int, Path(gt=0, le=PG_INT_MAX, description="A hotel id from GET /hotels")]


@router.get(
    "/hotels",
    summary="List hotels with their room types and prices",
    responses={200: ok(examples.hotels()), 503: UNAVAILABLE},
)
async def list_hotels(pool: PoolDep, settings: SettingsDep) -> list[Hotel]:
    async with acquire(pool, settings.db_acquire_timeout) as conn:
        rows = await repo.list_hotels(conn)
    return [
        Hotel.model_validate({**row, "room_types": json.loads(row["rooms"], parse_float=Decimal)})
        for row in rows
    ]


@router.get(
    "/hotels/{hotel_id}/availability",
    summary="Free rooms of each type for every night of a stay",
    responses={
        200: ok(examples.availability()),
        404: error("No such hotel", "hotel 99 not found"),
        422: validation_error(
            "check_out must be after check_in (also: at most 366 nights at once, check_in "
            "within the booking horizon, hotel_id up to 2147483647)",
            "query",
            "check_out",
        ),
        503: UNAVAILABLE,
    },
)
async def availability(
    hotel_id: HotelId, check_in: date, check_out: date, pool: PoolDep, settings: SettingsDep
) -> Availability:
    if check_out <= check_in:
        raise refuse("check_out must be after check_in", str(check_out), "query", "check_out")
    if (check_out - check_in).days > MAX_AVAILABILITY_DAYS:
        message = f"ask for at most {MAX_AVAILABILITY_DAYS} nights at once"
        raise refuse(message, str(check_out), "query", "check_out")
    check_horizon(check_in, settings.booking_horizon_days, "query", "check_in")
    async with acquire(pool, settings.db_acquire_timeout) as conn:
        if not await repo.hotel_exists(conn, hotel_id):
            raise NotFound(f"hotel {hotel_id} not found")
        rows = await repo.availability(conn, hotel_id, check_in, check_out)
    room_types = []
    for code, group in groupby(rows, key=lambda r: r["code"]):
        nights = list(group)
        room_types.append(
            RoomTypeAvailability(
                code=code,
                name=nights[0]["name"],
                total_rooms=nights[0]["total_rooms"],
                price_per_night=nights[0]["price_per_night"],
                free_every_night=min(n["free"] for n in nights),
                nights=[NightAvailability(night=n["night"], free=n["free"]) for n in nights],
            )
        )
    return Availability(
        hotel_id=hotel_id, check_in=check_in, check_out=check_out, room_types=room_types
    )
