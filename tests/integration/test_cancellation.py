"""POST /bookings/{id}/cancel: nights back in the inventory, BookingCancelled sent once."""

from __future__ import annotations

import json

from tests.support.infra import TestEnv
from tests.support.stack import booking_api, booking_body, fetchval, stay, with_token


async def test_cancelling_returns_the_nights_and_sends_booking_cancelled_exactly_once(
    env: TestEnv,
) -> None:
    check_in, check_out = stay(50, nights=2)
    body = booking_body(room_type="suite", check_in=check_in, check_out=check_out)
    window = {"check_in": check_in, "check_out": check_out}
    async with booking_api(env) as (client, _):
        booking = (await client.post("/bookings", json=body)).json()
        before = (await client.get("/hotels/1/availability", params=window)).json()
        first = await client.post(f"/bookings/{booking['id']}/cancel", headers=with_token(booking))
        second = await client.post(f"/bookings/{booking['id']}/cancel", headers=with_token(booking))
        after = (await client.get("/hotels/1/availability", params=window)).json()
        fetched = (await client.get(f"/bookings/{booking['id']}")).json()
    assert first.status_code == 200
    assert first.json()["status"] == "cancelled"
    assert second.status_code == 200
    assert second.json() == first.json()
    assert fetched["status"] == "cancelled"
    assert _free(before, "suite") == [1, 1]
    assert _free(after, "suite") == [2, 2]
    rows = await fetchval(
        env,
        "SELECT json_agg(event_type ORDER BY id) FROM booking.outbox WHERE booking_id = $1::uuid",
        booking["id"],
    )
    assert json.loads(rows) == ["BookingConfirmed", "BookingCancelled"]


async def test_a_cancelled_room_can_be_booked_again(env: TestEnv) -> None:
    check_in, check_out = stay(70, nights=1)
    body = booking_body(room_type="suite", check_in=check_in, check_out=check_out)
    async with booking_api(env) as (client, _):
        made = [(await client.post("/bookings", json=body)).json() for _ in range(2)]
        assert (await client.post("/bookings", json=body)).status_code == 409
        await client.post(f"/bookings/{made[0]['id']}/cancel", headers=with_token(made[0]))
        again = await client.post("/bookings", json=body)
    assert again.status_code == 201


async def test_cancelling_an_unknown_booking_is_404(env: TestEnv) -> None:
    unknown = "/bookings/00000000-0000-4000-8000-000000000000"
    token = {"X-Booking-Token": "x" * 43}
    async with booking_api(env) as (client, _):
        response = await client.post(f"{unknown}/cancel", headers=token)
        voucher = await client.get(f"{unknown}/voucher", headers=token)
    assert response.status_code == 404
    assert voucher.status_code == 404


def _free(availability: dict[str, object], code: str) -> list[int]:
    room_types = availability["room_types"]
    assert isinstance(room_types, list)
    [room] = [r for r in room_types if r["code"] == code]
    return [n["free"] for n in room["nights"]]
