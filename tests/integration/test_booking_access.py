"""Who may see and change a booking: the management token POST /bookings hands out once is
needed for the guest's details, the voucher and cancelling; the access log names routes,
never booking ids or tokens."""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

import httpx
import pytest

from shared import registry
from tests.support.infra import TestEnv
from tests.support.stack import booking_api, booking_body, fetchval, with_token

WRONG = {"X-Booking-Token": "A" * 43}


async def _book(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/bookings", json=booking_body(**overrides))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_booking_without_its_token_shows_status_and_fulfilment_but_no_guest_details(
    env: TestEnv,
) -> None:
    async with booking_api(env) as (client, _):
        created = await _book(client)
        other = await _book(client, guest_name="Someone Else")
        url = f"/bookings/{created['id']}"
        anonymous = (await client.get(url)).json()
        wrong = (await client.get(url, headers=WRONG)).json()
        others = (await client.get(url, headers=with_token(other))).json()
        holder = (await client.get(url, headers=with_token(created))).json()
    for view in (anonymous, wrong, others):
        assert set(view) == {"id", "status", "fulfilment"}, view
        assert view["status"] == "confirmed"
        assert set(view["fulfilment"]) == set(registry.NAMES)
    assert holder["guest_name"] == "Ada Lovelace"
    assert holder["guest_email"] == "ada@example.com"
    assert "management_token" not in holder


async def test_the_token_is_handed_out_once_and_only_its_hash_is_stored(env: TestEnv) -> None:
    async with booking_api(env) as (client, _):
        created = await _book(client)
    token = created["management_token"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", token)  # >= 256 bits, URL-safe
    stored = await fetchval(
        env,
        "SELECT array_agg(token_hash) FROM booking.booking_tokens WHERE booking_id = $1::uuid",
        created["id"],
    )
    assert stored == [hashlib.sha256(token.encode()).digest()]
    anywhere = await fetchval(
        env,
        "SELECT count(*) FROM booking.bookings b WHERE position($1 in b::text) > 0",
        token,
    )
    assert anywhere == 0


async def test_cancelling_needs_the_token_and_without_it_nothing_changes(env: TestEnv) -> None:
    async with booking_api(env) as (client, _):
        created = await _book(client)
        other = await _book(client)
        url = f"/bookings/{created['id']}/cancel"
        refused = [
            await client.post(url),
            await client.post(url, headers=WRONG),
            await client.post(url, headers=with_token(other)),  # another booking's token
            await client.post(url, headers={"X-Booking-Token": ""}),
        ]
        status = (await client.get(f"/bookings/{created['id']}")).json()["status"]
        events = await fetchval(
            env,
            "SELECT count(*) FROM booking.outbox WHERE booking_id = $1::uuid",
            created["id"],
        )
        accepted = await client.post(url, headers=with_token(created))
    for response in refused:
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "APIKey"
        assert "management token" in response.json()["detail"]
    assert status == "confirmed"
    assert events == 1  # BookingConfirmed only: no BookingCancelled was written
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "cancelled"


async def test_the_voucher_needs_the_token_before_saying_whether_it_is_issued(
    env: TestEnv,
) -> None:
    async with booking_api(env) as (client, _):
        created = await _book(client)
        url = f"/bookings/{created['id']}/voucher"
        anonymous = await client.get(url)
        wrong = await client.get(url, headers=WRONG)
        holder = await client.get(url, headers=with_token(created))
    assert anonymous.status_code == wrong.status_code == 401
    assert holder.status_code == 404  # no consumers run here: not issued yet
    assert "not issued yet" in holder.json()["detail"]


async def test_an_idempotent_replay_gets_a_new_token_and_both_tokens_work(env: TestEnv) -> None:
    headers = {"Idempotency-Key": "order-77"}
    async with booking_api(env) as (client, _):
        first = await client.post("/bookings", json=booking_body(), headers=headers)
        replay = await client.post("/bookings", json=booking_body(), headers=headers)
        url = f"/bookings/{first.json()['id']}"
        views = [
            (await client.get(url, headers=with_token(answer.json()))).json()
            for answer in (first, replay)
        ]
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]
    assert replay.json()["management_token"] != first.json()["management_token"]
    assert [view["guest_name"] for view in views] == ["Ada Lovelace", "Ada Lovelace"]
    assert await fetchval(env, "SELECT count(*) FROM booking.booking_tokens") == 2


async def test_the_access_log_names_routes_never_booking_ids_or_tokens(
    env: TestEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="booking.access")
    async with booking_api(env) as (client, _):
        created = await _book(client)
        token = with_token(created)
        await client.get(f"/bookings/{created['id']}", headers=token)
        await client.get(f"/bookings/{created['id']}/voucher", headers=token)
        await client.post(f"/bookings/{created['id']}/cancel", headers=token)
        await client.get(f"/no/such/path/{created['id']}/{created['management_token']}")
    lines = [r.getMessage() for r in caplog.records if r.name == "booking.access"]
    assert any('"POST /bookings HTTP/1.1" 201' in line for line in lines), lines
    assert any('"GET /bookings/{booking_id} HTTP/1.1" 200' in line for line in lines)
    assert any('"GET /bookings/{booking_id}/voucher HTTP/1.1" 404' in line for line in lines)
    assert any('"POST /bookings/{booking_id}/cancel HTTP/1.1" 200' in line for line in lines)
    assert any('"GET /no/such/path/…/… HTTP/1.1" 404' in line for line in lines)
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert created["id"] not in everything
    assert created["management_token"] not in everything
