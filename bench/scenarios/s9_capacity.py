"""Scenario 9, fulfilment capacity: bookings per second completed by all three consumers,
sustained for a minute, the whole system on one machine.

A backlog of real bookings (``POST /bookings``, relayed by the booking service into the three
consumers' queues) is made while the consumers are stopped; then the three start together
and the figure is the bookings whose last consumer reported done within a window of
``capacity_seconds``, after a warm-up. Each consumer's own rate in the window is kept too, to
show which one limits. The window ends early if a consumer runs out of backlog (it would
leave its core to the others and flatter the figure): then the rate is over the shorter
window, and the note says so. Each repetition runs in a fresh database and vhost, so no
left-over backlog or report queue of the previous one competes for the CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import psutil

from bench.config import RAW, Sizes
from bench.e2e import DoneTimes, bookings_since, db_now, done_times
from bench.harness import Stack, stack, wait_for
from bench.openloop import generate
from bench.scenarios import Outcome
from bench.stats import Figure, Verdict
from shared.messaging.topology import CONSUMER_SERVICES, consumer_topology, declare_all

BEFORE = 125.0  # bookings/s, the README's figure before round two (email-bound)
TARGET = 3 * BEFORE
PRELOAD_RATE = 700.0  # bookings/s offered while the consumers are stopped
BROKER_PATIENCE = 180.0  # s to wait for the broker to take a connection


async def _repeat(sizes: Sizes, repeat: int) -> dict[str, Any]:
    # The channel is opened first and kept: taking a backlog of this size in (or dropping
    # the previous repetition's vhost with what was left of it), the broker was seen to take
    # longer than a connection's timeout to answer a new one.
    async with stack(f"capacity{repeat}") as sut, _patient_channel(sut.amqp_url) as channel:
        await declare_all(channel)
        smtp = await sut.smtp_sink()
        url = await sut.booking()
        figures = await _measure(sut, channel, url, smtp, sizes, repeat)
    return figures


@asynccontextmanager
async def _patient_channel(url: str) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    deadline = time.monotonic() + BROKER_PATIENCE
    while True:
        try:
            connection = await asyncio.wait_for(aio_pika.connect(url), 30)
            break
        except (TimeoutError, OSError, aio_pika.exceptions.AMQPError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(2)
    try:
        yield await connection.channel()
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.close(), 10)


async def _measure(
    sut: Stack,
    channel: aio_pika.abc.AbstractChannel,
    url: str,
    smtp: int,
    sizes: Sizes,
    repeat: int,
) -> dict[str, Any]:
    queues = [consumer_topology(s).queue for s in CONSUMER_SERVICES]

    async def depths() -> list[int]:
        sut.check_alive()
        counts = []
        for queue in queues:
            declared = await channel.declare_queue(queue, passive=True)
            counts.append(int(declared.declaration_result.message_count or 0))
        return counts

    since = await db_now(sut)
    out = RAW / f"s9_preload_{repeat}.json"
    await generate(url, PRELOAD_RATE, sizes.capacity_backlog, out, repeat * 10**6)
    created = await bookings_since(sut, since)

    async def queued() -> bool:
        return min(await depths()) >= created

    await wait_for(queued, 180, "the backlog in every queue", interval=1.0)
    for service in CONSUMER_SERVICES:
        await sut.consumer(service, None, smtp)
    processes = {n: p for n, p in sut.processes.items() if n != "smtp"}

    async def begun() -> bool:
        return min(await depths()) < created

    await wait_for(begun, 60, "the consumers to start", interval=0.25)
    cpu_from = _cpu_seconds(processes)
    # The window itself is read from the database afterwards; this only waits for it to
    # pass, polling the queues rather than loading the database.
    deadline = time.time() + sizes.capacity_warmup + sizes.capacity_seconds + 1

    async def over() -> bool:
        return min(await depths()) == 0 or time.time() > deadline

    await wait_for(over, deadline - time.time() + 30, "the window to pass", interval=0.5)
    cpu_to = _cpu_seconds(processes)
    done = await done_times(sut, since)
    for queue in queues:  # what is left: dropping a vhost full of it kept the broker busy
        with contextlib.suppress(aio_pika.exceptions.AMQPError, TimeoutError):
            await (await channel.declare_queue(queue, passive=True)).purge(timeout=60)
    figures = _figures(repeat, created, done, sizes)
    figures["cpu_ms_per_booking"] = _cpu_per_booking(cpu_from, cpu_to, done)
    return figures


def _cpu_seconds(
    processes: dict[str, subprocess.Popen[bytes]],
) -> tuple[float, dict[str, float]]:
    """(now, CPU seconds each process has used so far, its threads and children included)."""
    used = {}
    for name, popen in processes.items():
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(popen.pid)
            times = process.cpu_times()
            used[name] = times.user + times.system + times.children_user + times.children_system
    return time.time(), used


def _cpu_per_booking(
    start: tuple[float, dict[str, float]], end: tuple[float, dict[str, float]], done: DoneTimes
) -> dict[str, float]:
    """CPU milliseconds each process spent per booking it completed meanwhile (booking: per
    booking reported on, the steps' mean). Unlike a rate, it does not move when other work on the
    machine takes the CPU away, so it compares two trees run on a busy machine."""
    (t0, before), (t1, after) = start, end
    counts = {step: sum(1 for t in times if t0 <= t < t1) for step, times in done.per_step.items()}
    # The booking service records every step's reports: per booking, the steps' mean.
    counts["booking"] = round(sum(counts.values()) / max(len(counts), 1))
    return {
        name: (after[name] - before[name]) * 1000 / counts[name]
        for name in after
        if name in before and counts.get(name)
    }


def _figures(repeat: int, created: int, done: DoneTimes, sizes: Sizes) -> dict[str, Any]:
    first = min(min(t) for t in done.per_step.values() if t)
    start = first + sizes.capacity_warmup
    end = start + sizes.capacity_seconds
    # A consumer that finished its whole backlog ends the window.
    finished = [max(t) for t in done.per_step.values() if len(t) >= created]
    end = min([end, *finished])
    seconds = max(end - start, 1e-9)

    def rate(times: list[float]) -> float:
        return sum(1 for t in times if start <= t < end) / seconds

    return {
        "repeat": repeat,
        "backlog": created,
        "window_s": seconds,
        "cut_short": seconds < sizes.capacity_seconds - 0.5,
        "bookings_per_s": rate(done.all_three),
        "per_step_per_s": {step: rate(times) for step, times in done.per_step.items()},
    }


async def run(sizes: Sizes) -> Outcome:
    runs = [await _repeat(sizes, repeat) for repeat in range(sizes.repeats)]
    figure = Figure(tuple(r["bookings_per_s"] for r in runs))
    steps = {
        step: Figure(tuple(r["per_step_per_s"][step] for r in runs)).median
        for step in CONSUMER_SERVICES
    }
    short = [f"{r['window_s']:.0f}" for r in runs if r["cut_short"]]
    cpu = {
        name: Figure(tuple(r["cpu_ms_per_booking"].get(name, float("nan")) for r in runs)).median
        for name in ("booking", *CONSUMER_SERVICES)
    }
    note = (
        f"{figure.median / BEFORE:.2f}× the {BEFORE:.0f}/s before; each consumer in the same run: "
        + ", ".join(f"{step} {value:,.0f}/s" for step, value in steps.items())
        + "; CPU ms per booking: "
        + ", ".join(f"{name} {value:.1f}" for name, value in cpu.items())
    )
    if short:
        note += f"; window cut to {', '.join(short)} s (a consumer ran out of backlog)"
    return Outcome(
        [
            Verdict(
                9,
                f"bookings/s completed by all three consumers, {sizes.capacity_seconds:.0f} s",
                figure,
                ">=",
                TARGET,
                unit="/s",
                note=note,
            )
        ],
        {"runs": runs},
    )
