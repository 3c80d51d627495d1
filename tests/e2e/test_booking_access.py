"""The booking service as a real uvicorn process: its log never holds a booking id or a
management token, and behind a trusted proxy each client has a rate limit of its own."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support.infra import TestEnv
from tests.support.processes import free_port, start_service, stop, wait_http
from tests.support.stack import spread_booking, with_token

pytestmark = pytest.mark.e2e


async def test_the_process_logs_routes_not_ids_or_tokens_and_limits_each_forwarded_client(
    env: TestEnv, logs: Path
) -> None:
    port = free_port()
    booking = start_service(
        "booking",
        {
            "DATABASE_URL": env.database_url,
            "AMQP_URL": env.amqp_url(),
            "PORT": str(port),
            "LOG_FORMAT": "json",
            "RATE_LIMIT_PER_ADDRESS": "1/minute",
            "RATE_LIMIT_PER_EMAIL": "100/minute",
            # The test plays the reverse proxy on 127.0.0.1: its X-Forwarded-For is believed.
            "FORWARDED_ALLOW_IPS": "127.0.0.1",
        },
        logs,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/hotels", timeout=60)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

            async def book(i: int, client_address: str) -> httpx.Response:
                headers = {"X-Forwarded-For": client_address}
                return await client.post("/bookings", json=spread_booking(i), headers=headers)

            first = await book(1, "198.51.100.1")
            second = await book(2, "198.51.100.2")  # another client behind the same proxy
            again = await book(3, "198.51.100.1")
            created = first.json()
            url, token = f"/bookings/{created['id']}", with_token(created)
            assert (await client.get(url, headers=token)).status_code == 200
            assert (await client.post(f"{url}/cancel", headers=token)).status_code == 200
    finally:
        assert stop(booking) == 0
    assert (first.status_code, second.status_code, again.status_code) == (201, 201, 429)
    text = (logs / "booking.log").read_text()
    access = [line for line in map(json.loads, text.splitlines()) if "HTTP/1.1" in line["message"]]
    assert {line["logger"] for line in access} == {"booking.access"}  # not uvicorn's own
    messages = [line["message"] for line in access]
    assert any(
        m.startswith("198.51.100.1:") and '"POST /bookings HTTP/1.1" 429' in m for m in messages
    )
    assert any('"POST /bookings/{booking_id}/cancel HTTP/1.1" 200' in m for m in messages)
    assert created["id"] not in "\n".join(messages)
    assert created["management_token"] not in text
