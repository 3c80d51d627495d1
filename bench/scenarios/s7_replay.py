"""Scenario 7, dead-letter replay: 10,000 messages parked in ``email.dlq`` (published
through ``email.dlx`` with the runtime's dead-letter headers) are replayed with
``bookingctl dlq replay email --all``; rate, and no loss (every message id back on the work
queue once). Reports "not available" where the ``bookingctl`` command is not installed."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench import BenchError
from bench.config import ROOT, Sizes
from bench.harness import Stack, amqp_channel, publish_all, stack
from bench.payloads import confirmed_messages
from bench.scenarios import Outcome
from bench.stats import Figure, Verdict, not_available
from shared.messaging.topology import consumer_topology

SERVICE = "email"
NAME = "dead-letter replay rate (bookingctl dlq replay email --all)"


def _bookingctl() -> str | None:
    if os.environ.get("BENCH_BOOKINGCTL"):  # e.g. another checkout's CLI
        return os.environ["BENCH_BOOKINGCTL"]
    beside = Path(sys.executable).parent / "bookingctl"
    return str(beside) if beside.exists() else shutil.which("bookingctl")


def _headers() -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    names = consumer_topology(SERVICE)
    return {
        "x-reason": "retries-exhausted",
        "x-exception-type": "SMTPServerDisconnected",
        "x-exception-message": "benchmark",
        "x-attempts": 5,
        "x-service": SERVICE,
        "x-original-queue": names.queue,
        "x-first-failure-at": now,
        "x-last-failure-at": now,
    }


async def _replay_once(sut: Stack, cli: str, count: int) -> float:
    names = consumer_topology(SERVICE)
    messages = confirmed_messages(count, headers=_headers())
    sent = {m.message_id for m in messages}
    await publish_all(
        sut.amqp_url, messages, routing_key=names.queue, exchange=names.dead_letter_exchange
    )
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        cli,
        "dlq",
        "replay",
        SERVICE,
        "--all",
        cwd=ROOT,
        env=sut.service_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), 60 + count / 100)
    except TimeoutError:
        process.kill()
        raise BenchError("the replay did not finish in time") from None
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise BenchError(f"bookingctl exited {process.returncode}: {out.decode()[-500:]}")
    back = await _take_all(sut.amqp_url, names.queue, count)
    left, _ = await sut.queue_counts(names.dead_letter_queue)
    if back != sent or left:
        raise BenchError(
            f"replay lost or duplicated messages: {len(sent - back)} missing, "
            f"{left} still dead-lettered"
        )
    return count / seconds


async def _take_all(url: str, queue_name: str, count: int) -> set[str]:
    """Every message id on the work queue (acked, so the next repetition starts empty)."""
    seen: set[str] = set()
    async with amqp_channel(url) as channel:
        await channel.set_qos(prefetch_count=500)
        queue = await channel.get_queue(queue_name, ensure=False)
        async with queue.iterator(timeout=5) as messages:
            try:
                async for message in messages:
                    await message.ack()
                    seen.add(str(message.message_id))
                    if len(seen) >= count:
                        break
            except TimeoutError:
                pass
    return seen


async def run(sizes: Sizes) -> Outcome:
    cli = _bookingctl()
    if cli is None:
        return Outcome([not_available(7, NAME, "bookingctl is not installed (branch dlq)")])
    rates: list[float] = []
    async with stack("replay") as sut:
        await sut.declare_topology()
        for _ in range(sizes.repeats):
            rates.append(await _replay_once(sut, cli, sizes.replay_messages))
    verdict = Verdict(
        7,
        NAME,
        Figure(tuple(rates)),
        ">=",
        2000,
        unit=" msg/s",
        note=f"{sizes.replay_messages:,} messages, none lost",
    )
    return Outcome([verdict], {"rates": rates})
