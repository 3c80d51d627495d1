"""What the chaos tests read from, and do to, the machine's real RabbitMQ and PostgreSQL.

``rabbitmqctl`` gives the broker's own numbers (ready, unacked, consumers), which a client
cannot see through AMQP; the memory alarm and the PostgreSQL stop affect the whole machine,
so both are context managers that always put things back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import shutil
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.messaging.topology import CONSUMERS

log = logging.getLogger(__name__)
CTL_TIMEOUT = 60.0


class ChaosInfraError(Exception):
    """A fault could not be injected or undone (rabbitmqctl or pg_ctlcluster failed)."""


@dataclass(frozen=True)
class QueueStats:
    name: str
    ready: int
    unacked: int
    consumers: int


def work_queues() -> list[str]:
    """Every queue a consumer takes work from: its work queue and its retry wait rooms."""
    return [name for names in CONSUMERS.values() for name in (names.queue, *names.retry_queues)]


async def run(*args: str, timeout: float = CTL_TIMEOUT) -> str:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ChaosInfraError(f"{' '.join(args)} did not finish within {timeout}s") from None
    if proc.returncode != 0:
        raise ChaosInfraError(f"{' '.join(args)} failed ({proc.returncode}): {out.decode()}")
    return out.decode()


def _ctl() -> str:
    return shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"


async def queue_stats(vhost: str, ctl: Sequence[str] = ()) -> dict[str, QueueStats]:
    """The vhost's queues as the broker counts them; ``ctl`` runs rabbitmqctl elsewhere
    (in a container: ``docker compose exec -T rabbitmq rabbitmqctl``)."""
    out = await run(
        *(ctl or [_ctl()]),
        "list_queues",
        "-q",
        "--formatter",
        "json",
        "-p",
        vhost,
        "name",
        "messages_ready",
        "messages_unacknowledged",
        "consumers",
    )
    rows = json.loads(out[out.index("[") :])
    return {
        row["name"]: QueueStats(
            row["name"],
            int(row["messages_ready"]),
            int(row["messages_unacknowledged"]),
            int(row["consumers"]),
        )
        for row in rows
    }


async def memory_watermark() -> str:
    """The broker's current high watermark, as an Erlang term (0.4 or {absolute,N})."""
    out = await run(_ctl(), "eval", "vm_memory_monitor:get_vm_memory_high_watermark().")
    return out.strip()


@contextlib.asynccontextmanager
async def memory_alarm() -> AsyncIterator[None]:
    """Raise RabbitMQ's memory alarm (watermark 0) and always put the old watermark back."""
    previous = await memory_watermark()
    await run(_ctl(), "set_vm_memory_high_watermark", "0")
    try:
        yield
    finally:
        await _restore_watermark(previous)


async def _restore_watermark(previous: str) -> None:
    absolute = re.fullmatch(r"\{absolute,\s*(\d+)\}", previous)
    if absolute:
        await run(_ctl(), "set_vm_memory_high_watermark", "absolute", absolute.group(1))
    else:
        await run(_ctl(), "set_vm_memory_high_watermark", previous)
    log.info("memory watermark restored to %s", previous)


def _pg_version() -> str:
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir())
    if not versions:
        raise ChaosInfraError("no PostgreSQL cluster under /etc/postgresql")
    return versions[-1]


async def _pg_ctl(action: str, *extra: str) -> None:
    await run("pg_ctlcluster", "--skip-systemctl-redirect", _pg_version(), "main", action, *extra)


@contextlib.asynccontextmanager
async def postgresql_stopped() -> AsyncIterator[float]:
    """Stop the machine's PostgreSQL (fast mode: sessions are cut, like a crash to clients)
    and always start it again; yields the time it went down (monotonic)."""
    await _pg_ctl("stop", "-m", "fast")
    try:
        yield time.monotonic()
    finally:
        await _pg_ctl("start")
