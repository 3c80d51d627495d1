"""Sizes of every scenario, full or quick (``BENCH_QUICK=1``: a smoke run of every scenario
with tiny sizes)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
RAW = RESULTS / "raw"


@dataclass(frozen=True)
class Sizes:
    quick: bool
    repeats: int
    # 1: seconds of wrk per measurement, client counts
    api_seconds: float
    api_clients: tuple[int, ...]
    # 2: messages per consumer-runtime measurement
    runtime_messages: int
    # 3: seconds at a steady 100 bookings/s
    latency_seconds: float
    # 4: seconds at a steady 50 bookings/s; seconds of backlog per consumer
    profile_seconds: float
    profile_backlog_seconds: float
    # 5: the burst
    burst_bookings: int
    burst_seconds: float
    # 6: seconds of backlog per replica count
    scaling_seconds: float
    # 7: dead letters replayed
    replay_messages: int
    # 10: bookings posted at 50/s and drained, by ours and by the seeds' Celery design
    drain_bookings: int
    # 9: bookings in the backlog; seconds of warm-up, then of the measured window
    capacity_backlog: int
    capacity_warmup: float
    capacity_seconds: float


FULL = Sizes(
    quick=False,
    repeats=3,
    api_seconds=8,
    api_clients=(32, 64),
    runtime_messages=10_000,
    latency_seconds=10,
    profile_seconds=15,
    profile_backlog_seconds=5,
    burst_bookings=5_000,
    burst_seconds=10,
    scaling_seconds=5,
    replay_messages=10_000,
    drain_bookings=500,
    capacity_backlog=30_000,
    capacity_warmup=10,
    capacity_seconds=60,
)
QUICK = Sizes(
    quick=True,
    repeats=3,
    api_seconds=2,
    api_clients=(32, 64),
    runtime_messages=1_000,
    latency_seconds=3,
    profile_seconds=3,
    profile_backlog_seconds=2,
    burst_bookings=500,
    burst_seconds=2,
    scaling_seconds=2,
    replay_messages=500,
    drain_bookings=100,
    capacity_backlog=2_000,
    capacity_warmup=2,
    capacity_seconds=5,
)


def sizes() -> Sizes:
    return QUICK if os.environ.get("BENCH_QUICK", "") not in ("", "0") else FULL
