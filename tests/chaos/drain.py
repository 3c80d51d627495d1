"""Draining the system before the invariants are checked, and reading the dead letters."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aio_pika
import asyncpg

from shared.messaging.topology import CONSUMERS
from tests.chaos.infra import QueueStats, work_queues
from tests.chaos.observed import ObservedSystem
from tests.chaos.system import CONSUMER_SERVICES

POISON_HEADER = "x-chaos-poison"


@dataclass(frozen=True)
class DeadLetter:
    message_id: str | None
    poison: str | None
    reason: str | None


async def _ready_depths(channel: aio_pika.abc.AbstractChannel) -> int:
    total = 0
    for name in work_queues():
        declared = await channel.declare_queue(name, passive=True)
        total += declared.declaration_result.message_count or 0
    return total


async def _progress(conn: asyncpg.Connection) -> tuple[int, ...]:
    schemas = ("booking", *CONSUMER_SERVICES)
    unpublished = " + ".join(
        f'(SELECT count(*) FROM "{s}".outbox WHERE published_at IS NULL)' for s in schemas
    )
    processed = ", ".join(f'(SELECT count(*) FROM "{s}".processed_events)' for s in schemas)
    row = await conn.fetchrow(f"SELECT {unpublished}, {processed}")
    assert row is not None
    return tuple(int(v) for v in row)


async def _unpublished_per_schema(conn: asyncpg.Connection) -> dict[str, int]:
    return {
        schema: int(
            await conn.fetchval(
                f'SELECT count(*) FROM "{schema}".outbox WHERE published_at IS NULL'
            )
        )
        for schema in ("booking", *CONSUMER_SERVICES)
    }


async def drain(system: ObservedSystem, timeout: float = 120.0) -> dict[str, QueueStats]:
    """Wait until every outbox is published, every work and retry queue is empty, the counts
    have stopped moving and the broker reports nothing unacked; its queue figures then."""
    deadline = time.monotonic() + timeout
    last: tuple[int, ...] | None = None
    conn = await asyncpg.connect(system.env.database_url, timeout=10)
    broker = await aio_pika.connect(system.amqp_url, timeout=10)
    try:
        channel = await broker.channel()
        while True:
            progress = (*await _progress(conn), await _ready_depths(channel))
            if progress[0] == 0 and progress[-1] == 0 and progress == last:
                stats = await system.queue_stats()
                empty = not any(stats[q].ready or stats[q].unacked for q in work_queues())
                # A process restarted a moment ago may not have subscribed yet: give it until
                # the deadline; I4 reports one that never does.
                if empty and (_all_subscribed(system, stats) or time.monotonic() > deadline):
                    return stats
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not drained after {timeout}s: {await _unpublished_per_schema(conn)} "
                    f"unpublished, processed {progress[1:-1]}, {progress[-1]} queued"
                )
            last = progress
            await asyncio.sleep(0.5)
    finally:
        await broker.close()
        await conn.close()


def _all_subscribed(system: ObservedSystem, stats: dict[str, QueueStats]) -> bool:
    running = [s.name for s in system.services.values() if s.alive]
    return all(stats[CONSUMERS[name].queue].consumers >= 1 for name in running)


async def dead_letters(system: ObservedSystem) -> dict[str, list[DeadLetter]]:
    """Take (and ack) everything in each consumer's dead-letter queue."""
    found: dict[str, list[DeadLetter]] = {}
    broker = await aio_pika.connect(system.amqp_url, timeout=10)
    try:
        channel = await broker.channel()
        for service, names in CONSUMERS.items():
            queue = await channel.declare_queue(names.dead_letter_queue, passive=True)
            found[service] = []
            while (message := await queue.get(fail=False, timeout=10)) is not None:
                headers = message.headers or {}
                found[service].append(
                    DeadLetter(
                        message.message_id,
                        _text(headers.get(POISON_HEADER)),
                        _text(headers.get("x-reason")),
                    )
                )
                await message.ack()
    finally:
        await broker.close()
    return found


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
