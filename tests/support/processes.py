"""The services as real OS processes, for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.infra import TestEnv

ROOT = Path(__file__).resolve().parents[2]
# What the tests, the chaos suite and the benchmarks run as: a developer's machine (the
# shared guest user, short example secrets: DEV_MODE) whose processes migrate their own
# schema at start, as PostgreSQL's superuser (there is no migration step per test). Set in
# the environment by tests/conftest.py, so processes the tests start inherit it; a test of
# the production behaviour sets them to false.
DEV_ENV = {"DEV_MODE": "true", "MIGRATE_ON_START": "true"}
# Tests, the chaos suite and the benchmarks fire many bookings from one address (127.0.0.1)
# and one guest email: the booking service's rate limits (20/minute per address, 10/hour per
# email by default) are lifted for them, explicitly.
NO_RATE_LIMITS = {
    "RATE_LIMIT_PER_ADDRESS": "1000000/second",
    "RATE_LIMIT_PER_EMAIL": "1000000/second",
}

# A booking service opens its whole pool at start (DB_POOL_WARM), and the suite's workers
# share one PostgreSQL (max_connections 100): the tests' booking processes take five
# connections, not the default twenty.
SMALL_POOL = {"DB_POOL_SIZE": "5"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    args: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, **env},
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_service(name: str, env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    """Start ``services.<name>``; a booking service on ``SMALL_POOL`` unless ``env`` says
    otherwise."""
    defaults = SMALL_POOL if name == "booking" else {}
    return start(["-m", f"services.{name}"], {**defaults, **env}, logs / f"{name}.log")


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
        raise AssertionError(f"process {process.args!r} did not exit within {timeout}s") from None


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout}s")


@contextlib.contextmanager
def booking_process(env: TestEnv, logs: Path, **variables: str) -> Iterator[str]:
    """The booking API as a real uvicorn process on a free port, against the test's own
    database and vhost, with ``variables`` on top; its base URL once it answers."""
    port = free_port()
    settings = {"DATABASE_URL": env.database_url, "AMQP_URL": env.amqp_url(), "PORT": str(port)}
    process = start_service("booking", {**settings, **variables}, logs)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/openapi.json", timeout=60)
        yield base
    finally:
        stop(process)
