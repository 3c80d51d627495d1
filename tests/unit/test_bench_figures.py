"""The benchmark's own arithmetic: parsing wrk's report, judging figures against targets,
ratios between targets, drain times, a process's CPU share; and its load generator's
keep-alive connections."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from dataclasses import replace
from typing import Any

import pytest

from bench import BenchError
from bench.config import FULL
from bench.e2e import DoneTimes
from bench.openloop import KEEP_ALIVE, Client
from bench.sampler import cpu_share, schedstat
from bench.scenarios.s5_burst import _saturation
from bench.scenarios.s9_capacity import _cpu_per_booking, _figures
from bench.stats import Figure, Verdict, drain_seconds, paired_ratio, percentile
from bench.wrk import parse

WRK_REPORT = """Running 8s test @ http://127.0.0.1:8000
  1 threads and 32 connections
  Latency Distribution
     50%    9.12ms
     75%   12.00ms
     90%   15.00ms
     99%    1.20s
  26400 requests in 8.00s, 9.1MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   3300.50
Transfer/sec:      1.1MB
"""


def test_wrk_report_gives_rate_percentiles_in_ms_and_every_error() -> None:
    result = parse(WRK_REPORT, clients=32, seconds=8)
    assert result.requests_per_second == 3300.50
    assert result.p50_ms == pytest.approx(9.12)
    assert result.p99_ms == pytest.approx(1200.0)
    assert result.errors == 4 + 2 + 1


def test_a_wrk_report_without_figures_is_an_error_not_a_zero() -> None:
    with pytest.raises(BenchError):
        parse("unable to connect to 127.0.0.1:8000 Connection refused", 32, 8)


def test_a_verdict_judges_the_median_of_the_repetitions() -> None:
    ratio = Verdict(1, "ratio", Figure((0.4, 0.6, 0.7)), ">=", 0.5)
    latency = Verdict(3, "p99", Figure((60.0, 40.0, 45.0)), "<=", 50, unit=" ms")
    assert ratio.met is True
    assert latency.met is True
    assert "0.60 (0.40\u20130.70)" in ratio.line()


def test_a_missed_figure_never_reads_as_its_target() -> None:
    drain = Verdict(10, "drain", Figure((0.9995, 0.9991, 0.9997)), ">=", 1.0, unit="x")
    assert drain.met is False
    assert "0.9995x (0.9991\u20130.9997)" in drain.line()
    apart = Verdict(10, "drain", Figure((0.95, 0.94, 0.96)), ">=", 1.0, unit="x")
    assert "0.95x (0.94\u20130.96)" in apart.line()  # the usual decimals tell them apart


def test_what_never_arrived_makes_the_percentile_infinitely_late() -> None:
    arrived = [5.0] * 98
    assert percentile([*arrived, float("inf"), float("inf")], 99) == float("inf")
    assert percentile(arrived, 99) == 5.0
    assert Verdict(3, "p99", Figure((float("inf"),)), "<=", 50).met is False


def test_a_scenario_that_could_not_run_is_neither_met_nor_missed() -> None:
    verdict = Verdict(7, "replay", Figure(()), ">=", 2000, available=False, note="no CLI")
    assert verdict.met is None
    assert "NOT AVAILABLE" in verdict.line()


def test_a_ratio_divides_the_runs_of_the_same_repetition_and_only_those() -> None:
    runs = [
        {"repeat": 0, "target": "booking", "clients": 32, "rps": 600.0},
        {"repeat": 0, "target": "bare", "clients": 32, "rps": 1000.0},
        {"repeat": 1, "target": "bare", "clients": 32, "rps": 2000.0},  # CBA: bare first
        {"repeat": 1, "target": "booking", "clients": 32, "rps": 1000.0},
        {"repeat": 2, "target": "bare", "clients": 32, "rps": 3000.0},  # booking never ran
        {"repeat": 0, "target": "booking", "clients": 64, "rps": 9000.0},
    ]
    ratio = paired_ratio(runs, "booking", "bare", "rps", clients=32)
    assert ratio.samples == (0.6, 0.5)


def test_a_ratio_to_a_baseline_that_measured_zero_is_infinite_not_an_error() -> None:
    runs = [
        {"repeat": 0, "target": "celery", "drain_s": 30.0},
        {"repeat": 0, "target": "ours", "drain_s": 0.0},
    ]
    assert paired_ratio(runs, "celery", "ours", "drain_s").samples == (math.inf,)


def test_a_drain_counts_from_the_first_booking_due_to_the_last_step_done() -> None:
    assert drain_seconds(1000.0, 1011.5, done=1500, expected=1500) == 11.5


def test_a_drain_with_a_step_never_done_or_a_booking_refused_is_infinitely_long() -> None:
    assert drain_seconds(1000.0, 1011.5, done=1499, expected=1500) == math.inf
    assert drain_seconds(1000.0, None, done=0, expected=1500) == math.inf
    assert drain_seconds(1000.0, 1011.5, done=1497, expected=1497, refused=1) == math.inf


async def test_the_load_generator_never_sends_on_a_connection_idle_past_keep_alive() -> None:
    opened = 0

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal opened
        opened += 1
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while await reader.readuntil(b"\r\n\r\n"):
                await reader.readexactly(2)  # the body, "{}"
                writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = Client("127.0.0.1", port)
    try:
        assert await client.post("/bookings", b"{}") == 201
        assert await client.post("/bookings", b"{}") == 201
        assert opened == 1  # kept alive
        reader, writer, since = client.idle.pop()
        client.idle.append((reader, writer, since - KEEP_ALIVE))  # as if idle since then
        assert await client.post("/bookings", b"{}") == 201
        assert opened == 2
        assert writer.is_closing()
    finally:
        for _, writer, _ in client.idle:
            writer.close()
        server.close()


def test_capacity_counts_bookings_done_by_all_three_within_the_window_after_the_warm_up() -> None:
    # Each step does one booking every 0.01 s from t=100; all three are done 0.02 s later.
    steps = {s: [100 + i / 100 for i in range(3000)] for s in ("notification", "email", "voucher")}
    done = DoneTimes(steps, [t + 0.02 for t in steps["email"]])
    sizes = replace(FULL, capacity_warmup=5, capacity_seconds=10)
    figures = _figures(0, 10_000, done, sizes)
    assert figures["bookings_per_s"] == pytest.approx(100, rel=0.01)
    assert figures["window_s"] == 10
    assert not figures["cut_short"]


def test_a_consumer_that_ran_out_of_backlog_ends_the_capacity_window() -> None:
    steps = {s: [100 + i / 100 for i in range(3000)] for s in ("notification", "email")}
    steps["voucher"] = [100 + i / 1000 for i in range(3000)]  # done with all 3,000 at t=103
    done = DoneTimes(steps, [max(ts) for ts in zip(*steps.values(), strict=True)])
    sizes = replace(FULL, capacity_warmup=1, capacity_seconds=10)
    figures = _figures(0, 3000, done, sizes)
    assert figures["cut_short"]
    assert figures["window_s"] == pytest.approx(103 - 101, abs=0.01)


def test_cpu_per_booking_divides_each_process_s_cpu_by_what_it_completed_meanwhile() -> None:
    steps = {s: [10.5, 11.5, 12.5, 30.0] for s in ("notification", "email", "voucher")}
    steps["notification"] = [10.1, 10.2, 10.3, 10.4, 10.5, 11.5, 12.5]  # ahead of the others
    done = DoneTimes(steps, [10.6, 11.6, 30.0])
    used = _cpu_per_booking(
        (10, {"email": 1.0, "booking": 2.0}), (20, {"email": 1.3, "booking": 2.1}), done
    )
    assert used == pytest.approx({"email": 100.0, "booking": 25.0})  # (7 + 3 + 3) / 3 = 4


def test_a_cpu_share_is_run_and_wait_per_second_across_the_window_s_samples() -> None:
    samples = [(9.0, 0.0, 0.0), (10.0, 1.0, 0.5), (11.0, 1.7, 0.8), (12.0, 2.3, 1.2), (13.0, 9, 9)]
    run, wait = cpu_share(samples, 10.0, 12.5) or (0, 0)
    assert run == pytest.approx(0.65)
    assert wait == pytest.approx(0.35)
    assert cpu_share(samples, 10.5, 11.5) is None  # one sample is no interval


@pytest.mark.skipif(schedstat(os.getpid()) is None, reason="the kernel gives no schedstat")
def test_schedstat_counts_the_cpu_time_this_process_spends() -> None:
    before = schedstat(os.getpid())
    busy_until = time.process_time() + 0.05
    while time.process_time() < busy_until:
        pass
    after = schedstat(os.getpid())
    assert before is not None
    assert after is not None
    assert after[0] - before[0] >= 0.04
    assert schedstat(2**22 + 1) is None  # no such process


def test_the_burst_says_how_saturated_booking_was_or_that_it_was_not_sampled() -> None:
    runs: list[dict[str, Any]] = [{"booking_cpu": (0.66, 0.33)}, {"booking_cpu": [0.7, 0.25]}]
    assert _saturation(runs).endswith("0.66 / 0.33, 0.70 / 0.25")
    assert _saturation([*runs, {"booking_cpu": None}]) == "booking's CPU time not sampled"
