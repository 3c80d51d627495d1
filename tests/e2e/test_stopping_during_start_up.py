"""A service stopped while it starts (a replica scaled up and down at once, Ctrl-C during
start-up) exits with code 0 and says so, whether the signal comes while it imports its
modules or while it waits for PostgreSQL: never a death by SIGTERM (-15)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.processes import start_service, stop

pytestmark = pytest.mark.e2e

SERVICES = ("booking", "email")
SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


@pytest.fixture
async def silent_postgres() -> AsyncIterator[tuple[int, asyncio.Event]]:
    """A TCP port that accepts connections and never answers, as a PostgreSQL that hangs:
    (port, set once a client has connected)."""
    contacted = asyncio.Event()
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        contacted.set()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], contacted
    for writer in held:
        writer.close()
    server.close()


def catches_sigterm(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & SIGTERM_BIT)


def has_loaded_asyncpg(pid: int) -> bool:
    return "asyncpg" in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_stopped_while_it_waits_for_postgresql_exits_cleanly(
    service: str,
    service_env: dict[str, str],
    silent_postgres: tuple[int, asyncio.Event],
    tmp_path: Path,
) -> None:
    port, contacted = silent_postgres
    env = {**service_env, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/none"}
    process = start_service(service, env, tmp_path)
    try:
        await asyncio.wait_for(contacted.wait(), 30)
    finally:
        code = await asyncio.to_thread(stop, process, signal.SIGTERM, 15)
    log = (tmp_path / f"{service}.log").read_text()
    assert code == 0, log
    assert f"{service} stopped cleanly before it had started" in log, log


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_stopped_while_it_imports_its_modules_exits_cleanly(
    service: str, service_env: dict[str, str], tmp_path: Path
) -> None:
    process = start_service(service, service_env, tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not catches_sigterm(process.pid):
            assert process.poll() is None, "exited before it caught SIGTERM"
            assert time.monotonic() < deadline, "never caught SIGTERM"
            time.sleep(0.001)
        # Read after the handler was seen: asyncpg not loaded now was not loaded then.
        importing = not has_loaded_asyncpg(process.pid)
    finally:
        code = stop(process, signal.SIGTERM, 15)
    log = (tmp_path / f"{service}.log").read_text()
    assert importing, "SIGTERM was caught only once the modules were imported"
    assert code == 0, log
    assert f"{service} stopped cleanly before it had started" in log, log
