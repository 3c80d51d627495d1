"""Samples over time while a scenario runs: queue depths (AMQP passive declare) and the
resident memory of each process (psutil, children included)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections import defaultdict

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
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), INTERVAL)
