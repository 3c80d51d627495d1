"""POST /bookings is rate limited per client address and per guest email: 429 with
Retry-After and a reason; only new bookings count against the email."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.support.infra import TestEnv
from tests.support.stack import booking_api, booking_body, fetchval, spread_booking, stay


def client_at(app: FastAPI, address: str) -> httpx.AsyncClient:
    """Another client of the same running app, from ``address``."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://booking.test")


async def test_an_address_over_its_limit_gets_429_with_retry_after_and_other_addresses_do_not(
    env: TestEnv,
) -> None:
    async with (
        booking_api(env, rate_limit_per_address="3/minute") as (_, app),
        client_at(app, "203.0.113.5") as busy,
        client_at(app, "203.0.113.6") as calm,
    ):
        answers = [
            (await busy.post("/bookings", json=spread_booking(i))).status_code for i in range(3)
        ]
        # Refused requests count too: a flood of invalid bodies is a flood all the same.
        refused = await busy.post("/bookings", json=booking_body(hotel_id="x"))
        other = await calm.post("/bookings", json=spread_booking(4))
    assert answers == [201, 201, 201]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 61
    assert "from this address" in refused.json()["detail"]
    assert "3/minute" in refused.json()["detail"]
    assert other.status_code == 201
    assert await fetchval(env, "SELECT count(*) FROM booking.bookings") == 4


async def test_a_guest_email_over_its_limit_gets_429_and_only_new_bookings_count(
    env: TestEnv,
) -> None:
    check_in, check_out = stay(80, nights=1)
    deluxe = {"hotel_id": 3, "room_type": "deluxe", "check_in": check_in, "check_out": check_out}
    async with booking_api(env, rate_limit_per_email="2/hour") as (client, _):
        for n in range(5):  # hotel 3's five deluxe rooms go to other guests
            guest = f"guest{n}@example.com"
            assert (
                await client.post("/bookings", json=booking_body(**deluxe, guest_email=guest))
            ).status_code == 201
        key = {"Idempotency-Key": "order-1"}
        first = await client.post("/bookings", json=spread_booking(1), headers=key)
        replay = await client.post("/bookings", json=spread_booking(1), headers=key)
        # No room: these made no booking, so they do not count.
        full = [
            (await client.post("/bookings", json=booking_body(**deluxe))).status_code
            for _ in range(3)
        ]
        second = await client.post("/bookings", json=spread_booking(2))
        third = await client.post("/bookings", json=booking_body(guest_email="Ada+x@Example.com"))
        elsewhere = await client.post("/bookings", json=booking_body(guest_email="bob@example.com"))
        replay_after = await client.post("/bookings", json=spread_booking(1), headers=key)
    assert first.status_code == replay.status_code == second.status_code == 201
    assert full == [409, 409, 409]
    assert third.status_code == 429, third.text
    assert "guest email" in third.json()["detail"]
    assert int(third.headers["retry-after"]) >= 1
    assert elsewhere.status_code == 201
    # A replay needs no budget: a client that lost the answer can still get it.
    assert replay_after.status_code == 201
    assert replay_after.headers["idempotent-replayed"] == "true"
    ada = "SELECT count(*) FROM booking.bookings WHERE guest_email = 'ada@example.com'"
    assert await fetchval(env, ada) == 2
