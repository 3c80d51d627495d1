"""Hostile input to the public booking API, against the real app and a real PostgreSQL: every
value the database cannot take is refused with a 422 that names the field, never a 500."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from services.booking.schemas import today
from tests.support.infra import TestEnv
from tests.support.stack import booking_api, booking_body, fetchval, stay

PAST_INT32 = 2**31


def _issue(response: Any) -> tuple[int, list[Any], str]:
    """Status, location and message of a 422's first issue (or the status alone)."""
    body = response.json()
    if response.status_code != 422 or not body.get("errors"):
        return response.status_code, [], str(body)
    issue = body["errors"][0]
    return response.status_code, issue["loc"], issue["msg"]


async def test_an_id_past_the_database_integer_is_a_422_that_names_it_not_a_500(
    env: TestEnv,
) -> None:
    check_in, check_out = stay()
    async with booking_api(env) as (client, _):
        looked_up = await client.get(
            f"/hotels/{PAST_INT32}/availability",
            params={"check_in": check_in, "check_out": check_out},
        )
        booked = await client.post("/bookings", json=booking_body(hotel_id=PAST_INT32))
        largest = await client.get(
            f"/hotels/{PAST_INT32 - 1}/availability",
            params={"check_in": check_in, "check_out": check_out},
        )
    assert _issue(looked_up)[:2] == (422, ["path", "hotel_id"])
    assert "less than or equal to 2147483647" in _issue(looked_up)[2]
    assert _issue(booked)[:2] == (422, ["body", "hotel_id"])
    assert largest.status_code == 404  # the largest integer is a fair question: no such hotel
    assert await fetchval(env, "SELECT count(*) FROM booking.bookings") == 0


async def test_a_nul_or_control_character_in_any_string_of_the_public_api_is_a_422(
    env: TestEnv,
) -> None:
    """PostgreSQL cannot store NUL in text: it must never get as far as a query."""
    async with booking_api(env) as (client, _):
        answers = {
            "room_type": await client.post(
                "/bookings", json=booking_body(room_type="stand\x00ard")
            ),
            "guest_name": await client.post("/bookings", json=booking_body(guest_name="A\x00")),
            "guest_email": await client.post(
                "/bookings", json=booking_body(guest_email="a\x00@example.com")
            ),
            "Idempotency-Key": await client.post(
                "/bookings", json=booking_body(), headers={"Idempotency-Key": "order\x00-1"}
            ),
            "Idempotency-Key (tab)": await client.post(
                "/bookings", json=booking_body(), headers={"Idempotency-Key": "order\t1"}
            ),
        }
    locations = {name: _issue(response)[:2] for name, response in answers.items()}
    assert locations == {
        "room_type": (422, ["body", "room_type"]),
        "guest_name": (422, ["body", "guest_name"]),
        "guest_email": (422, ["body", "guest_email"]),
        "Idempotency-Key": (422, ["header", "Idempotency-Key"]),
        "Idempotency-Key (tab)": (422, ["header", "Idempotency-Key"]),
    }
    assert "printable ASCII" in _issue(answers["Idempotency-Key"])[2]
    assert await fetchval(env, "SELECT count(*) FROM booking.bookings") == 0
    assert await fetchval(env, "SELECT count(*) FROM booking.idempotency_keys") == 0


async def test_a_check_in_beyond_the_horizon_is_refused_with_the_limit_and_the_last_day_is_not(
    env: TestEnv,
) -> None:
    last = today() + timedelta(days=10)
    after = last + timedelta(days=1)
    night = timedelta(days=1)

    def window(check_in: Any) -> dict[str, str]:
        return {"check_in": str(check_in), "check_out": str(check_in + night)}

    async with booking_api(env, booking_horizon_days=10) as (client, _):
        far = await client.post("/bookings", json=booking_body(**window(after)))
        year_9999 = await client.post(
            "/bookings", json=booking_body(check_in="9999-12-01", check_out="9999-12-03")
        )
        edge = await client.post("/bookings", json=booking_body(**window(last)))
        far_look = await client.get("/hotels/1/availability", params=window(after))
        edge_look = await client.get("/hotels/1/availability", params=window(last))
    reason = f"check_in must be at most 10 days ahead (on or before {last})"
    assert _issue(far) == (422, ["body", "check_in"], reason)
    assert _issue(year_9999) == (422, ["body", "check_in"], reason)
    assert _issue(far_look) == (422, ["query", "check_in"], reason)
    assert edge.status_code == 201, edge.text
    assert edge_look.status_code == 200
    assert await fetchval(env, "SELECT count(*) FROM booking.bookings") == 1


async def test_availability_refusals_are_field_errors_like_every_other_422(env: TestEnv) -> None:
    check_in, _ = stay()
    async with booking_api(env) as (client, _):
        backwards = await client.get(
            "/hotels/1/availability", params={"check_in": check_in, "check_out": check_in}
        )
    assert _issue(backwards) == (422, ["query", "check_out"], "check_out must be after check_in")


async def test_a_number_json_cannot_carry_is_a_422_not_a_500(env: TestEnv) -> None:
    """Python's JSON parser takes NaN, Infinity and 1e999; the 422 that echoes them back
    must still be JSON."""
    body = json.dumps(booking_body(hotel_id=0))
    headers = {"content-type": "application/json"}
    async with booking_api(env) as (client, _):
        answers = [
            await client.post(
                "/bookings",
                content=body.replace('"hotel_id": 0', f'"hotel_id": {token}'),
                headers=headers,
            )
            for token in ("NaN", "Infinity", "-Infinity", "1e999")
        ]
    assert [_issue(response)[:2] for response in answers] == [(422, ["body", "hotel_id"])] * 4
    assert [response.json()["errors"][0]["input"] for response in answers] == [
        "nan",
        "inf",
        "-inf",
        "inf",
    ]
