"""The booking API against a real PostgreSQL (and RabbitMQ for its relay)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.support.infra import TestEnv
from tests.support.stack import booking_api, booking_body, fetchval, stay, with_token


async def test_hotels_are_seeded_with_room_types_prices_and_counts(env: TestEnv) -> None:
    async with booking_api(env) as (client, _):
        response = await client.get("/hotels")
    assert response.status_code == 200
    hotels = response.json()
    assert [h["name"] for h in hotels] == ["Hotel Aurora", "Alpine Lodge", "Harbour View"]
    suite = next(r for r in hotels[0]["room_types"] if r["code"] == "suite")
    assert suite == {
        "code": "suite",
        "name": "Aurora suite",
        "price_per_night": "350.00",
        "total_rooms": 2,
    }


async def test_a_booking_is_created_returned_and_counted_against_availability(env: TestEnv) -> None:
    check_in, check_out = stay(40, nights=3)
    body = booking_body(room_type="deluxe", check_in=check_in, check_out=check_out)
    async with booking_api(env) as (client, _):
        created = await client.post("/bookings", json=body)
        assert created.status_code == 201, created.text
        booking = created.json()
        fetched = await client.get(f"/bookings/{booking['id']}", headers=with_token(booking))
        availability = await client.get(
            "/hotels/1/availability", params={"check_in": check_in, "check_out": check_out}
        )
    assert booking["status"] == "confirmed"
    assert booking["nights"] == 3
    assert booking["total_price"] == "570.00"
    assert {k: booking[k] for k in body} == body
    assert created.headers["location"] == f"/bookings/{booking['id']}"
    assert fetched.json() == {k: v for k, v in booking.items() if k != "management_token"}
    deluxe = next(r for r in availability.json()["room_types"] if r["code"] == "deluxe")
    assert [n["free"] for n in deluxe["nights"]] == [7, 7, 7]
    assert deluxe["free_every_night"] == 7
    outbox = await fetchval(
        env, "SELECT count(*) FROM booking.outbox WHERE booking_id = $1::uuid", booking["id"]
    )
    assert outbox == 1


async def test_an_unknown_booking_is_404_and_a_malformed_id_is_422(env: TestEnv) -> None:
    async with booking_api(env) as (client, _):
        missing = await client.get("/bookings/00000000-0000-0000-0000-000000000000")
        malformed = await client.get("/bookings/not-a-uuid")
        no_hotel = await client.get(
            "/hotels/99/availability",
            params=dict(zip(("check_in", "check_out"), stay(), strict=True)),
        )
    assert missing.status_code == 404
    assert "not found" in missing.json()["detail"]
    assert malformed.status_code == 422
    assert no_hotel.status_code == 404


async def test_fifty_concurrent_requests_for_the_last_five_rooms_make_exactly_five_bookings(
    env: TestEnv,
) -> None:
    check_in, check_out = stay(60, nights=2)
    body = booking_body(hotel_id=3, room_type="deluxe", check_in=check_in, check_out=check_out)
    async with booking_api(env, db_pool_size=50) as (client, _):
        responses = await asyncio.gather(*(client.post("/bookings", json=body) for _ in range(50)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 5
    assert statuses.count(409) == 45
    assert all(
        "no deluxe room is free" in r.json()["detail"] for r in responses if r.status_code == 409
    )
    booked = await fetchval(
        env,
        "SELECT max(reserved) FROM booking.room_nights WHERE hotel_id = 3 AND room_type = 'deluxe'",
    )
    assert booked == 5


async def test_the_same_idempotency_key_and_body_return_the_same_booking_once(env: TestEnv) -> None:
    body = booking_body(room_type="suite")
    headers = {"Idempotency-Key": "order-42"}
    async with booking_api(env) as (client, _):
        responses = await asyncio.gather(
            *(client.post("/bookings", json=body, headers=headers) for _ in range(5))
        )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 4
    assert await fetchval(env, "SELECT count(*) FROM booking.bookings") == 1
    assert await fetchval(env, "SELECT count(*) FROM booking.outbox") == 1
    assert await fetchval(env, "SELECT max(reserved) FROM booking.room_nights") == 1


async def test_the_same_idempotency_key_with_another_body_is_refused(env: TestEnv) -> None:
    headers = {"Idempotency-Key": "order-43"}
    async with booking_api(env) as (client, _):
        first = await client.post("/bookings", json=booking_body(), headers=headers)
        second = await client.post(
            "/bookings", json=booking_body(guest_name="Someone Else"), headers=headers
        )
    assert first.status_code == 201
    assert second.status_code == 422
    assert "different request body" in second.json()["detail"]


def _bad_bodies() -> list[tuple[str, dict[str, Any], int, str]]:
    check_in, _ = stay()
    past_in, past_out = stay(-3)
    long_in, long_out = stay(10, nights=31)
    return [
        ("check_out not after check_in", booking_body(check_out=check_in), 422, "after check_in"),
        ("check_in in the past", booking_body(check_in=past_in, check_out=past_out), 422, "past"),
        (
            "more than 30 nights",
            booking_body(check_in=long_in, check_out=long_out),
            422,
            "30 nights",
        ),
        ("unknown hotel", booking_body(hotel_id=999), 422, "hotel 999 does not exist"),
        ("unknown room type", booking_body(room_type="penthouse"), 422, "no room type"),
        ("invalid email", booking_body(guest_email="not-an-email"), 422, "email"),
        ("CRLF in name", booking_body(guest_name="Eve\r\nBcc: all@example.com"), 422, "control"),
        ("LF in email", booking_body(guest_email="eve@example.com\nBcc: x@y.z"), 422, "email"),
        ("unknown field", booking_body(discount=100), 422, "Extra inputs"),
        (
            "missing field",
            {k: v for k, v in booking_body().items() if k != "guest_email"},
            422,
            "guest_email",
        ),
        ("wrong type", booking_body(hotel_id="one"), 422, "hotel_id"),
    ]


@pytest.mark.parametrize(
    ("case", "body", "status", "reason"),
    _bad_bodies(),
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_bad_input_gets_a_clear_4xx_and_books_nothing(
    env: TestEnv, case: str, body: dict[str, Any], status: int, reason: str
) -> None:
    async with booking_api(env) as (client, _):
        response = await client.post("/bookings", json=body)
    assert response.status_code == status, response.text
    assert reason in response.text
    assert await fetchval(env, "SELECT count(*) FROM booking.bookings") == 0


async def test_bodies_over_16_kib_are_refused_with_413_with_or_without_content_length(
    env: TestEnv,
) -> None:
    big = booking_body(guest_name="x" * 17_000)

    async def chunks() -> Any:
        payload = httpx.Request("POST", "/", json=big).content
        for i in range(0, len(payload), 4096):
            yield payload[i : i + 4096]

    async with booking_api(env) as (client, _):
        declared = await client.post("/bookings", json=big)
        chunked = await client.post(
            "/bookings", content=chunks(), headers={"content-type": "application/json"}
        )
        not_json = await client.post(
            "/bookings", content=b"\xff\xfe{", headers={"content-type": "application/json"}
        )
    assert declared.status_code == 413
    assert chunked.status_code == 413
    assert "16384 bytes" in declared.json()["detail"]
    assert not_json.status_code == 400
    assert "encoded as UTF-8" in not_json.json()["detail"]
