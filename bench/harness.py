"""The system under test as real OS processes, in a PostgreSQL database and RabbitMQ vhost
created for one scenario and dropped after it (the same helpers as the tests use)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx

from bench import BenchError
from bench.config import RAW, ROOT
from shared import priority
from shared.messaging.topology import CONSUMER_SERVICES, consumer_topology, declare_all
from tests.support.infra import TestEnv, create_env, drop_env
from tests.support.processes import DEV_ENV, NO_RATE_LIMITS, free_port

# Enough rooms that no benchmark booking is ever refused for lack of availability.
ROOMS_PER_TYPE = 1_000_000
QUIET = {"LOG_LEVEL": "WARNING"}


@dataclass
class Stack:
    """One scenario's database, vhost and processes; everything is stopped on exit."""

    env: TestEnv
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def amqp_url(self) -> str:
        return self.env.amqp_url(heartbeat=30)

    def service_env(self, **extra: str | int) -> dict[str, str]:
        base = {
            "DATABASE_URL": self.env.database_url,
            "AMQP_URL": self.amqp_url,
            **DEV_ENV,
            **QUIET,
        }
        return {**base, **{key.upper(): str(value) for key, value in extra.items()}}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start ``python args...`` as process ``name`` (its output goes to the raw logs)."""
        if name in self.processes:
            raise BenchError(f"process {name} already running")
        handle = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        self.processes[name] = process
        return process

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise BenchError(f"{name} exited with {process.returncode}; see {self.logs}")

    async def stop(self, name: str, timeout: float = 20) -> None:
        process = self.processes.pop(name)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, 5)

    async def stop_all(self) -> None:
        await asyncio.gather(*(self.stop(name) for name in list(self.processes)))

    # --- the services -------------------------------------------------------------------

    async def smtp_sink(self) -> int:
        port = free_port()
        self.start("smtp", ["-m", "bench.smtp_sink", str(port)], {})
        await wait_for(lambda: _port_open(port), 15, "the SMTP sink")
        return port

    async def booking(self, **settings: str | int) -> str:
        """Start the booking service; return its base URL once it answers."""
        port = free_port()
        # Benchmarks fire thousands of bookings from one address and one guest email.
        env = self.service_env(port=port, **{**NO_RATE_LIMITS, **settings})
        self.start("booking", ["-m", "services.booking"], env)
        url = f"http://127.0.0.1:{port}"
        await wait_http(f"{url}/hotels", self)
        await self.sql(f"UPDATE booking.room_types SET total_rooms = {ROOMS_PER_TYPE}")
        return url

    async def consumer(
        self, service: str, name: str | None = None, smtp_port: int = 0, **settings: str | int
    ) -> None:
        """Start one consumer process of ``service`` (optionally as replica ``name``)."""
        # Ops servers on free ports: replicas of one service run side by side.
        # At the priority the local runner gives them (shared/priority.py).
        extra: dict[str, str | int] = {
            "http_port": 0,
            "notification_http_port": 0,
            "niceness": priority.BACKGROUND,
            **settings,
        }
        if smtp_port:
            extra["smtp_port"] = smtp_port
        self.start(name or service, ["-m", f"services.{service}"], self.service_env(**extra))

    async def system(
        self,
        step_ms: dict[str, int] | None = None,
        prefetch: dict[str, int] | None = None,
        **consumer_settings: str | int,
    ) -> str:
        """SMTP sink, booking service and the three consumers (each with its simulated step
        from ``step_ms``, its prefetch from ``prefetch`` where given); returns the booking
        URL once every consumer consumes."""
        await self.declare_topology()  # so waiting for consumers can look at their queues
        smtp = await self.smtp_sink()
        url = await self.booking()
        for service in CONSUMER_SERVICES:
            settings = dict(consumer_settings)
            settings["simulated_latency_ms"] = (step_ms or {}).get(service, 0)
            if prefetch is not None and service in prefetch:
                settings["prefetch"] = prefetch[service]
            await self.consumer(service, None, smtp, **settings)
        for service in CONSUMER_SERVICES:
            await self.wait_consumers(service, 1)
        return url

    async def wait_consumers(self, service: str, count: int, timeout: float = 60) -> None:
        queue = consumer_topology(service).queue

        async def enough() -> bool:
            self.check_alive()
            return (await self.queue_counts(queue))[1] >= count

        await wait_for(enough, timeout, f"{count} consumer(s) on {queue}")

    # --- the data -------------------------------------------------------------------------

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.env.database_url, timeout=10)
        try:
            return list(await conn.fetch(query, *args, timeout=120))
        finally:
            await conn.close()

    async def declare_topology(self) -> None:
        async with amqp_channel(self.amqp_url) as channel:
            await declare_all(channel)

    async def queue_counts(self, queue: str) -> tuple[int, int]:
        """(ready messages, consumers) of ``queue``."""
        async with amqp_channel(self.amqp_url) as channel:
            declared = await channel.declare_queue(queue, passive=True)
            result = declared.declaration_result
            return int(result.message_count or 0), int(result.consumer_count or 0)


@asynccontextmanager
async def stack(label: str) -> AsyncIterator[Stack]:
    env = await create_env(f"bench_{label}")
    logs = RAW / "logs" / label
    logs.mkdir(parents=True, exist_ok=True)
    running = Stack(env, logs)
    try:
        yield running
    finally:
        await running.stop_all()
        with contextlib.suppress(Exception):
            await drop_env(env)


@asynccontextmanager
async def amqp_channel(url: str) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await asyncio.wait_for(aio_pika.connect(url), 10)
    try:
        yield await connection.channel()
    finally:
        await asyncio.wait_for(connection.close(), 10)


async def publish_all(
    url: str, messages: list[aio_pika.Message], routing_key: str, exchange: str = ""
) -> None:
    """Publish with confirms, pipelined in batches (the fastest safe way to fill a queue)."""
    async with amqp_channel(url) as channel:
        target = channel.default_exchange
        if exchange:
            target = await channel.get_exchange(exchange, ensure=False)
        for start in range(0, len(messages), 500):
            batch = messages[start : start + 500]
            await asyncio.wait_for(
                asyncio.gather(*(target.publish(m, routing_key=routing_key) for m in batch)), 60
            )


async def wait_for(
    condition: Callable[[], bool] | Callable[[], Awaitable[bool]],
    timeout: float,
    what: str,
    interval: float = 0.05,
) -> None:
    """Poll ``condition``. A condition that queries the system under test (a database
    connection each time) takes a longer ``interval``: polling must not load what it measures;
    the figures come from the database's timestamps, not from when the poll saw them."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


async def wait_http(url: str, stack: Stack, timeout: float = 60) -> None:
    async with httpx.AsyncClient(timeout=1) as client:

        async def answers() -> bool:
            stack.check_alive()
            try:
                return (await client.get(url)).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_for(answers, timeout, url)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
