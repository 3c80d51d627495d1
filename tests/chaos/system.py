"""The system under test: the four services as real processes, each reaching RabbitMQ through
a TCP proxy the test can break, and email going to a real SMTP server that counts what it
receives.

The proxies run on an event loop of their own, in a thread, so a busy test loop (the load
driver, a slow query) never stalls the links the services talk through.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from shared import registry
from tests.chaos.infra import QueueStats, queue_stats
from tests.support.infra import AMQP_HOST, AMQP_PORT, TestEnv
from tests.support.processes import NO_RATE_LIMITS, free_port, start_service
from tests.support.smtp import SmtpRecorder, smtp_server
from tests.support.tcp_proxy import TcpProxy

CONSUMER_SERVICES = registry.NAMES
SERVICES = ("booking", *CONSUMER_SERVICES)
T = TypeVar("T")

# Settings every chaos run uses: small pools (other tests share the machine's PostgreSQL),
# retries patient enough to outlast a PostgreSQL restart, and short broker timeouts so a
# fault is noticed in seconds.
BASE_SETTINGS = {
    "LOG_LEVEL": "INFO",
    "PREFETCH": "10",
    "DB_POOL_SIZE": "6",
    "MAX_ATTEMPTS": "12",
    "RETRY_BASE_DELAY": "0.2",
    "RETRY_MAX_DELAY": "2",
    "OUTBOX_SWEEP_INTERVAL": "0.5",
    "OUTBOX_RETRY_MAX_DELAY": "1",
    "SHUTDOWN_GRACE": "5",
    "STARTUP_TIMEOUT": "30",
    "NOTIFICATION_HTTP_PORT": "0",
    # The load driver books thousands of stays from one address and one guest email.
    **NO_RATE_LIMITS,
}


class ProxyThread:
    """A TcpProxy living on its own event loop in a daemon thread."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._proxy = TcpProxy(target_host, target_port)
        self._call_sync(self._proxy.start())

    def _call_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    @property
    def port(self) -> int:
        return self._proxy.port

    async def cut(self) -> None:
        await self._call(self._proxy.cut())

    async def blackhole(self) -> None:
        await self._call(self._proxy.blackhole())

    async def deafen(self) -> None:
        await self._call(self._proxy.deafen())

    async def restore(self) -> None:
        await self._call(self._proxy.restore())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._call_sync(self._proxy.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


@dataclass
class Service:
    """One service process; ``start`` again after a kill for a fresh one."""

    name: str
    env: dict[str, str]
    logs: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _log_offset: int = 0

    @property
    def log(self) -> Path:
        return self.logs / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        assert not self.alive, f"{self.name} is already running"
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        self.process = start_service(self.name, self.env, self.logs)
        self.starts += 1

    def ops_url(self) -> str:
        """The ops server's address, as the consumer logged it (it takes a free port)."""
        found = re.findall(r"ops HTTP server on (http://\S+)", self.log_since_start())
        if not found:
            raise AssertionError(f"{self.name} has not logged its ops server")
        return str(found[-1])

    def log_since_start(self) -> str:
        if not self.log.exists():
            return ""
        with self.log.open("rb") as handle:
            handle.seek(self._log_offset)
            return handle.read().decode(errors="replace")

    async def signal(self, sig: int, timeout: float = 30.0) -> tuple[int, float]:
        """Send ``sig`` and wait (without blocking the loop) for the exit: (code, seconds)."""
        assert self.process is not None
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = await self.wait_exit(timeout)
        return code, time.monotonic() - started

    async def wait_exit(self, timeout: float) -> int:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while (code := self.process.poll()) is None:
            if time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(f"{self.name} did not exit within {timeout}s")
            await asyncio.sleep(0.05)
        return code


@dataclass
class System:
    env: TestEnv
    logs: Path
    smtp: SmtpRecorder
    api_link: ProxyThread
    consumer_link: ProxyThread
    port: int
    services: dict[str, Service] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def amqp_url(self) -> str:
        """The broker itself, never through a proxy: what the test uses to look."""
        return self.env.amqp_url()

    @property
    def consumers(self) -> list[Service]:
        return [self.services[name] for name in CONSUMER_SERVICES]

    async def queue_stats(self) -> dict[str, QueueStats]:
        """The broker's own figures for this run's vhost."""
        return await queue_stats(self.env.vhost)

    async def cut(self) -> None:
        await asyncio.gather(self.api_link.cut(), self.consumer_link.cut())

    async def blackhole(self) -> None:
        await asyncio.gather(self.api_link.blackhole(), self.consumer_link.blackhole())

    async def restore(self) -> None:
        await asyncio.gather(self.api_link.restore(), self.consumer_link.restore())

    async def start(self, *names: str, timeout: float = 60.0) -> None:
        """Start the services named (all by default) and wait until each is ready: the API
        answers, a consumer has logged that it consumes."""
        chosen = [self.services[name] for name in names or SERVICES]
        for service in chosen:
            service.start()
        await asyncio.gather(*(self.wait_ready(service, timeout) for service in chosen))

    async def restart(self, name: str, timeout: float = 60.0) -> None:
        await self.start(name, timeout=timeout)

    async def wait_ready(self, service: Service, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=1) as client:
            while time.monotonic() < deadline:
                if not service.alive:
                    raise AssertionError(f"{service.name} exited: {service.log_since_start()}")
                if await self._ready(service, client):
                    return
                await asyncio.sleep(0.1)
        raise AssertionError(f"{service.name} not ready after {timeout}s")

    async def wait_log(self, name: str, text: str, timeout: float = 30.0) -> None:
        """Wait until the service's log since its last start contains ``text``."""
        service = self.services[name]
        deadline = time.monotonic() + timeout
        while text not in service.log_since_start():
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} did not log {text!r} within {timeout}s")
            await asyncio.sleep(0.1)

    async def _ready(self, service: Service, client: httpx.AsyncClient) -> bool:
        if service.name == "booking":
            try:
                return (await client.get(f"{self.base_url}/hotels")).status_code == 200
            except httpx.HTTPError:
                return False
        return ": consuming (prefetch" in service.log_since_start()

    async def stop_all(self, timeout: float = 30.0) -> dict[str, int]:
        """SIGTERM every running service; their exit codes."""
        running = [s for s in self.services.values() if s.alive]
        results = await asyncio.gather(*(s.signal(signal.SIGTERM, timeout) for s in running))
        return {s.name: code for s, (code, _) in zip(running, results, strict=True)}

    def kill_all(self) -> None:
        for service in self.services.values():
            if service.alive and service.process is not None:
                service.process.kill()
                service.process.wait(10)


@contextlib.asynccontextmanager
async def launched(
    env: TestEnv,
    logs: Path,
    *,
    heartbeat: int = 5,
    start: bool = True,
    broker_url: str | None = None,
    kind: Callable[..., System] = System,
    **overrides: str,
) -> AsyncIterator[System]:
    """The whole system, built and (unless ``start=False``) started; always torn down.

    The services reach the machine's broker through the two links, or ``broker_url`` (the
    cluster suite's three nodes) directly; ``kind`` builds the System (a subclass that looks
    at another broker)."""
    api_link = ProxyThread(AMQP_HOST, AMQP_PORT)
    consumer_link = ProxyThread(AMQP_HOST, AMQP_PORT)
    try:
        async with smtp_server() as smtp:
            system = kind(env, logs, smtp, api_link, consumer_link, port=free_port())
            common = {
                **BASE_SETTINGS,
                "DATABASE_URL": env.database_url,
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(smtp.port),
                # Each consumer's ops server on a free port: never in the way of a local
                # `make run` or of another test's processes.
                "HTTP_PORT": "0",
                **overrides,
            }
            for name in SERVICES:
                link = api_link if name == "booking" else consumer_link
                url = broker_url or env.amqp_url(port=link.port, heartbeat=heartbeat)
                settings = {**common, "AMQP_URL": url}
                if name == "booking":
                    settings["PORT"] = str(system.port)
                system.services[name] = Service(name, settings, logs)
            try:
                if start:
                    await system.start()
                yield system
            finally:
                system.kill_all()
    finally:
        api_link.close()
        consumer_link.close()
