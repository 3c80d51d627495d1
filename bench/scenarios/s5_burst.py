"""Scenario 5, load leveling: a burst of bookings (5,000 in 10 s) while the consumers run
without simulated work; the API's latency must stay low throughout while the queues absorb
the burst and drain. Scenario 8 (memory) samples every process's RSS during the same run."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bench import BenchError
from bench.config import RAW, Sizes
from bench.e2e import bookings_since, db_now, latencies_ms
from bench.harness import stack, wait_for
from bench.openloop import generate
from bench.plots import timeline_plot
from bench.sampler import Sampler
from bench.scenarios import Outcome
from bench.stats import Figure, Verdict, percentile
from shared.messaging.topology import CONSUMER_SERVICES, consumer_topology

DRAIN_LIMIT = 120.0
RSS_LIMIT_MB = {"booking": 150.0, **{s: 100.0 for s in CONSUMER_SERVICES}}


def _per_second_p99(
    answers: list[tuple[float, float, int]], t0: float
) -> tuple[list[float], list[float]]:
    buckets: dict[int, list[float]] = defaultdict(list)
    for due, latency, _ in answers:
        buckets[int(due - t0)].append(latency)
    seconds = sorted(buckets)
    return [s + 0.5 for s in seconds], [percentile(buckets[s], 99) for s in seconds]


async def run(sizes: Sizes) -> Outcome:
    runs: list[dict[str, Any]] = []
    rate = sizes.burst_bookings / sizes.burst_seconds
    queues = [consumer_topology(s).queue for s in CONSUMER_SERVICES]
    plots: list[str] = []
    async with stack("burst") as sut:
        url = await sut.system()
        for repeat in range(sizes.repeats):
            since = await db_now(sut)
            processes = {n: p for n, p in sut.processes.items() if n != "smtp"}
            sampler = Sampler(sut.amqp_url, queues, processes)
            sampler.start()
            out = RAW / f"s5_{repeat}.json"
            answers = await generate(url, rate, sizes.burst_bookings, out, repeat * 10**6)
            # Committed bookings, from the database: a request the client gave up on may
            # still have committed, and its booking must be fulfilled too.
            created = await bookings_since(sut, since)

            async def drained(since: Any = since, created: int = created) -> bool:
                sut.check_alive()
                return len(await latencies_ms(sut, since)) >= created

            try:
                await wait_for(drained, DRAIN_LIMIT, "the queues to drain", interval=0.5)
            except BenchError as exc:  # reported as bookings not fulfilled, not a crash
                print(f"    scenario 5: {exc}", flush=True)
            finally:
                await sampler.stop()
            t0 = answers[0][0]
            drained_at = (
                max(t for q in queues for t, n in sampler.depth[q] if n > 0) - t0
                if any(n for q in queues for _, n in sampler.depth[q])
                else 0.0
            )
            runs.append(
                {
                    "repeat": repeat,
                    "requests": len(answers),
                    "created": created,
                    "answered_201": sum(1 for *_, status in answers if status == 201),
                    "fulfilled": len(await latencies_ms(sut, since)),
                    "api_p99_ms": percentile([lat for _, lat, _ in answers], 99),
                    "api_p99_worst_second_ms": max(_per_second_p99(answers, t0)[1]),
                    "peak_depth": {q: max(n for _, n in sampler.depth[q]) for q in queues},
                    "queues_empty_after_s": drained_at,
                    "peak_rss_mb": sampler.peak_rss_mb(),
                    # (run, wait) s per s: saturated when they add up to about one
                    "booking_cpu": sampler.cpu_share("booking", t0, t0 + sizes.burst_seconds),
                }
            )
            if repeat == 0:
                plots.append(_plot(answers, sampler, t0, queues, sizes))
    return _outcome(runs, plots)


def _plot(
    answers: list[tuple[float, float, int]],
    sampler: Sampler,
    t0: float,
    queues: list[str],
    sizes: Sizes,
) -> str:
    depth = {
        q: ([t - t0 for t, _ in sampler.depth[q]], [float(n) for _, n in sampler.depth[q]])
        for q in queues
    }
    xs, p99 = _per_second_p99(answers, t0)
    return timeline_plot(
        "s5_burst.png",
        f"Scenario 5: {sizes.burst_bookings:,} bookings in {sizes.burst_seconds:.0f} s: "
        "queue depth (ready messages) and POST /bookings p99 per second",
        depth,
        "messages ready",
        {"POST /bookings p99 (ms)": (xs, p99)},
        "latency (ms)",
    )


def _saturation(runs: list[dict[str, Any]]) -> str:
    """How saturated the booking process was: what it ran and waited for a CPU, each second."""
    shares = [r["booking_cpu"] for r in runs]
    if any(share is None for share in shares):
        return "booking's CPU time not sampled"
    return "booking ran / waited for a CPU, s per s: " + ", ".join(
        f"{run:.2f} / {wait:.2f}" for run, wait in shares
    )


def _outcome(runs: list[dict[str, Any]], plots: list[str]) -> Outcome:
    lost = sum(r["created"] - r["fulfilled"] for r in runs)
    verdicts = [
        Verdict(
            5,
            "POST /bookings p99 during the burst",
            Figure(tuple(r["api_p99_ms"] for r in runs)),
            "<=",
            100,
            unit=" ms",
            note="worst second: "
            + ", ".join(f"{r['api_p99_worst_second_ms']:.0f}" for r in runs)
            + " ms; "
            + _saturation(runs),
        ),
        Verdict(
            5,
            "bookings fulfilled by all three consumers after the burst",
            Figure(tuple(r["fulfilled"] / max(r["created"], 1) for r in runs)),
            ">=",
            1.0,
            note=f"{lost} missing; queues empty "
            + ", ".join(f"{r['queues_empty_after_s']:.0f}" for r in runs)
            + " s after start",
        ),
    ]
    for name, limit in RSS_LIMIT_MB.items():
        verdicts.append(
            Verdict(
                8,
                f"peak RSS of {name} under the burst",
                Figure(tuple(r["peak_rss_mb"].get(name, float("nan")) for r in runs)),
                "<=",
                limit,
                unit=" MB",
            )
        )
    return Outcome(verdicts, {"runs": runs}, plots)
