"""Local scaling without containers: three email processes compete for one queue. Every email
is sent exactly once (counted at a real SMTP server, the project's mail catcher in a process
of its own, and in email.emails) and the work is spread over all three; their JSON logs tag
each line about a message with its ids."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.infra import TestEnv
from tests.support.load import LoadDriver
from tests.support.processes import free_port, start, start_service, stop, wait_http
from tests.support.stack import effects, equals, wait_until

pytestmark = pytest.mark.e2e
BOOKINGS = 300
REPLICAS = 3
# A connection that broke: the booking is sent again with its key.
TRANSPORT_ERRORS = {"ReadError", "WriteError", "RemoteProtocolError", "ConnectError"}


async def _book_all(port: int) -> list[str]:
    """Every booking accepted, sent as a client should: each with an Idempotency-Key, and sent
    again with it when its connection breaks (under the suite's parallel load a connection
    once ended in a reset mid-burst), so a retry can never book twice, which the exactly-once
    checks below would see. Anything but a 201 or a broken connection fails the test."""
    load = LoadDriver(f"http://127.0.0.1:{port}", concurrency=20, key_prefix="scaling")
    record = await load.run(BOOKINGS)
    print(f"answers: {dict(record.statuses)}")
    assert len(record.accepted) == BOOKINGS, record.statuses
    broken = {status for status in record.statuses if status != 201}
    assert broken <= TRANSPORT_ERRORS, record.statuses
    return list(record.accepted.values())


async def _rows(env: TestEnv, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(env.database_url)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


def _json_lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


async def test_three_email_processes_send_every_email_exactly_once_and_share_the_work(
    env: TestEnv, service_env: dict[str, str], mail: tuple[int, Path], logs: Path
) -> None:
    api_port = free_port()
    ops_ports = [free_port() for _ in range(REPLICAS)]
    settings = {**service_env, "PREFETCH": "10"}
    booking = start_service("booking", {**settings, "PORT": str(api_port)}, logs)
    emails = [
        start(
            ["-m", "services.email"],
            {**settings, "HTTP_PORT": str(port), "REPLICA_NAME": f"email-{n}"},
            logs / f"email-{n}.log",
        )
        for n, port in enumerate(ops_ports, start=1)
    ]
    try:
        for port in ops_ports:  # all three subscribed before the first booking
            wait_http(f"http://127.0.0.1:{port}/health/ready", timeout=60)
        wait_http(f"http://127.0.0.1:{api_port}/health/ready")
        booking_ids = await _book_all(api_port)
        await wait_until(
            lambda: equals(effects(env, "email"), BOOKINGS), timeout=60, what="all emails"
        )
        await asyncio.sleep(0.5)  # a duplicate send would show up by now
        async with httpx.AsyncClient(timeout=5) as client:
            scrapes = [(await client.get(f"http://127.0.0.1:{p}/metrics")).text for p in ops_ports]
    finally:
        codes = [stop(p) for p in (*emails, booking)]
    received = [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in mail[1].glob("*.eml")
    ]

    assert codes == [0] * (REPLICAS + 1)
    # Exactly once at the SMTP server: one message per booking, no Message-ID twice.
    assert len(received) == BOOKINGS
    assert len({m["Message-ID"] for m in received}) == BOOKINGS
    rows = await _rows(env, "SELECT booking_id, sent_by FROM email.emails")
    assert sorted(str(r["booking_id"]) for r in rows) == sorted(booking_ids)
    # Spread over all three processes, recorded as hostname:pid by each.
    per_process = Counter(r["sent_by"].rsplit(":", 1)[1] for r in rows)
    assert set(per_process) == {str(p.pid) for p in emails}
    print(f"emails per process: {sorted(per_process.values())}")
    assert min(per_process.values()) >= BOOKINGS // 10, per_process
    acked = [
        float(line.split()[-1])
        for text in scrapes
        for line in text.splitlines()
        if line.startswith('hotel_messages_acked_total{queue="email.booking-events"}')
    ]
    assert sum(acked) == BOOKINGS
    # JSON logs: each "sent" line carries the message's ids and the replica's name.
    for n in range(1, REPLICAS + 1):
        sent = [
            line
            for line in _json_lines(logs / f"email-{n}.log")
            if line["message"].startswith("sent ")
        ]
        assert len(sent) == per_process[str(emails[n - 1].pid)]
        assert all(line["service"] == "email" and line["replica"] == f"email-{n}" for line in sent)
        assert all(line["booking_id"] == line["correlation_id"] for line in sent)
        assert all(line["booking_id"] in booking_ids and line["event_id"] for line in sent)


def test_a_replica_given_a_port_in_use_exits_with_one_clear_line(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        process = start(["-m", "services.email"], {"HTTP_PORT": str(port)}, tmp_path / "e.log")
        assert process.wait(20) == 1
    last = (tmp_path / "e.log").read_text().strip().splitlines()[-1]
    assert last.startswith(
        f"error: email cannot start: the ops HTTP server cannot listen on 127.0.0.1:{port}"
    )
    assert "HTTP_PORT" in last
