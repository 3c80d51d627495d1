"""The POST /bookings example of /openapi.json, what "Try it out" sends as it stands, books
whenever rooms exist: once its stay is sold out, the next fetch of the document shows
another one that books, and each fetch has a guest email of its own (the per-email rate
limit counts them apart). Against the real app and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.infra import TestEnv
from tests.support.stack import booking_api, fetchval


async def example(client: httpx.AsyncClient) -> dict[str, Any]:
    document = (await client.get("/openapi.json")).json()
    [shown] = document["components"]["schemas"]["BookingRequest"]["examples"]
    assert isinstance(shown, dict)
    return shown


async def test_the_example_still_books_after_its_stay_is_sold_out(env: TestEnv) -> None:
    async with booking_api(env, rate_limit_per_email="10/hour") as (client, _):
        first = await example(client)
        rooms = await fetchval(
            env,
            "SELECT total_rooms FROM booking.room_types WHERE hotel_id = $1 AND code = $2",
            first["hotel_id"],
            first["room_type"],
        )
        sold = [
            await client.post("/bookings", json={**first, "guest_email": f"g{i}@example.com"})
            for i in range(rooms)
        ]
        assert [answer.status_code for answer in sold] == [201] * rooms
        assert (await client.post("/bookings", json=first)).status_code == 409  # sold out
        later = await example(client)
        booked = await client.post("/bookings", json=later)
        again = await example(client)
    assert booked.status_code == 201, booked.text
    stay = ("hotel_id", "room_type", "check_in", "check_out")
    assert [later[key] for key in stay] != [first[key] for key in stay]
    assert len({first["guest_email"], later["guest_email"], again["guest_email"]}) == 3
