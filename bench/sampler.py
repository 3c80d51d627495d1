"""Samples over time while a scenario runs: queue depths (AMQP passive declare), the
resident memory of each process (psutil, children included), and how long each process ran
and waited for a CPU (Linux's per-thread schedstat): a process whose run and wait add up to
about a second each second is runnable all the time, saturated, and its share of the CPU,
not anything it waits on, sets its latency."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import psutil

from bench.harness import amqp_channel

INTERVAL = 0.25


class Sampler:
    def __init__(
        self, amqp_url: str, queues: list[str], processes: dict[str, subprocess.Popen[bytes]]
    ):
        self._url, self._queues = amqp_url, queues
        self._processes = {name: psutil.Process(p.pid) for name, p in processes.items()}
        self.depth: dict[str, list[tuple[float, int]]] = defaultdict(list)
        self.rss_mb: dict[str, list[tuple[float, float]]] = defaultdict(list)
        # (time, seconds run, seconds waited for a CPU), cumulative since the process began
        self.cpu: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 10)

    def peak_rss_mb(self) -> dict[str, float]:
        return {name: max(v for _, v in samples) for name, samples in self.rss_mb.items()}

    def cpu_share(self, name: str, start: float, end: float) -> tuple[float, float] | None:
        """Seconds ``name`` ran and waited for a CPU per second, between ``start`` and
        ``end``; None without two samples in that window."""
        return cpu_share(self.cpu.get(name, []), start, end)

    async def _run(self) -> None:
        async with amqp_channel(self._url) as channel:
            while not self._stop.is_set():
                now = time.time()
                for queue in self._queues:
                    declared = await channel.declare_queue(queue, passive=True)
                    count = declared.declaration_result.message_count or 0
                    self.depth[queue].append((now, int(count)))
                for name, process in self._processes.items():
                    with contextlib.suppress(psutil.Error):
                        rss = process.memory_info().rss
                        for child in process.children(recursive=True):
                            rss += child.memory_info().rss
                        self.rss_mb[name].append((now, rss / 2**20))
                    if (times := schedstat(process.pid)) is not None:
                        self.cpu[name].append((now, *times))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), INTERVAL)


def schedstat(pid: int) -> tuple[float, float] | None:
    """Seconds a process's threads have run, and waited runnable for a CPU; None where the
    kernel does not say (not Linux, no schedstats, the process gone)."""
    run = wait = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            ran, waited, _ = (task / "schedstat").read_text().split()
            run, wait = run + int(ran), wait + int(waited)
    except (OSError, ValueError):
        return None
    return run / 1e9, wait / 1e9


def cpu_share(
    samples: list[tuple[float, float, float]], start: float, end: float
) -> tuple[float, float] | None:
    """(run, wait) per second over the samples between ``start`` and ``end``."""
    inside = [s for s in samples if start <= s[0] <= end]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    (t0, run0, wait0), (t1, run1, wait1) = inside[0], inside[-1]
    return (run1 - run0) / (t1 - t0), (wait1 - wait0) / (t1 - t0)
