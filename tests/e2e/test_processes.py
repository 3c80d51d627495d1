"""The four services as real processes, started the way an operator starts them."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx
import pytest

from shared import priority, registry
from shared.messaging.topology import consumer_topology
from tests.support.amqp import queue_depth
from tests.support.infra import TestEnv
from tests.support.processes import free_port, start, start_service, stop, wait_http
from tests.support.stack import (
    at_least,
    booking_body,
    effects,
    equals,
    fetchval,
    spread_booking,
    wait_until,
)

pytestmark = pytest.mark.e2e
CONSUMERS = registry.NAMES


async def test_booking_and_three_consumer_processes_fulfil_a_booking_and_stop_cleanly(
    env: TestEnv, service_env: dict[str, str], logs: Path
) -> None:
    port = free_port()
    booking = start_service("booking", {**service_env, "PORT": str(port)}, logs)
    # As the local runner starts them: each in a session of its own, at the lowest priority.
    background = {**service_env, "NICENESS": str(priority.BACKGROUND)}
    consumers = [start_service(name, background, logs) for name in CONSUMERS]
    try:
        wait_http(f"http://127.0.0.1:{port}/hotels")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            response = await client.post("/bookings", json=booking_body())
        assert response.status_code == 201
        for process in consumers:  # the API's autogroup is not theirs: both are lowered
            autogroup = (
                await asyncio.to_thread(Path(f"/proc/{process.pid}/autogroup").read_text)
            ).split()
            assert os.getpriority(os.PRIO_PROCESS, process.pid) == priority.BACKGROUND
            assert autogroup[-1] == str(priority.BACKGROUND)
        booking_id = response.json()["id"]
        for name in CONSUMERS:
            await wait_until(
                lambda n=name: equals(effects(env, n, booking_id), 1), what=f"{name} effect"
            )
    finally:
        codes = [stop(p) for p in (*consumers, booking)]
    assert codes == [0, 0, 0, 0]
    for name in ("booking", *CONSUMERS):  # each process settled its heap once it was built
        assert "heap settled" in (logs / f"{name}.log").read_text(), name


async def test_sigterm_to_a_consumer_while_it_processes_loses_nothing(
    env: TestEnv, service_env: dict[str, str], logs: Path
) -> None:
    total = 30
    slow = {**service_env, "SIMULATED_LATENCY_MS": "300", "PREFETCH": "5", "SHUTDOWN_GRACE": "5"}
    port = free_port()
    booking = start_service("booking", {**service_env, "PORT": str(port)}, logs)
    email = start_service("email", slow, logs)
    try:
        wait_http(f"http://127.0.0.1:{port}/hotels")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for i in range(total):
                assert (await client.post("/bookings", json=spread_booking(i))).status_code == 201
        await wait_until(lambda: at_least(effects(env, "email"), 3), what="email under way")
        assert stop(email, signal.SIGTERM, timeout=15) == 0
        handled = await effects(env, "email")
        assert handled < total, (
            "the consumer finished everything before SIGTERM; test proves nothing"
        )
        queue = consumer_topology("email").queue
        assert await queue_depth(env.amqp_url(), queue) == total - handled

        email = start_service("email", {**slow, "SIMULATED_LATENCY_MS": "0"}, logs)
        await wait_until(lambda: equals(effects(env, "email"), total), what="all emails")
        await wait_until(lambda: equals(queue_depth(env.amqp_url(), queue), 0), what="queue empty")
        processed = await fetchval(env, "SELECT count(*) FROM email.processed_events")
        assert processed == total
    finally:
        stop(email)
        stop(booking)


def test_a_consumer_exits_with_one_clear_line_when_postgresql_is_unreachable(
    tmp_path: Path,
) -> None:
    env = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none", "STARTUP_TIMEOUT": "1"}
    process = start(["-m", "services.email"], env, tmp_path / "email.log")
    assert process.wait(20) == 1
    last = (tmp_path / "email.log").read_text().strip().splitlines()[-1]
    assert last.startswith("error: email cannot start: cannot connect to PostgreSQL")
