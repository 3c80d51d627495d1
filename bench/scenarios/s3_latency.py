"""Scenario 3: end-to-end latency, from a booking's commit to all three consumers done (no
simulated work), at a steady 100 bookings/s (open loop)."""

from __future__ import annotations

from typing import Any

from bench import BenchError
from bench.config import RAW, Sizes
from bench.e2e import bookings_since, db_now, latencies_ms
from bench.harness import stack, wait_for
from bench.openloop import generate
from bench.scenarios import Outcome
from bench.stats import Figure, Verdict, percentile

RATE = 100.0


async def run(sizes: Sizes) -> Outcome:
    runs: list[dict[str, Any]] = []
    count = int(RATE * sizes.latency_seconds)
    async with stack("latency") as sut:
        url = await sut.system()
        await generate(url, RATE, 200, RAW / "s3_warmup.json", offset=900_000)
        for repeat in range(sizes.repeats):
            since = await db_now(sut)
            answers = await generate(url, RATE, count, RAW / f"s3_{repeat}.json", repeat * count)
            created = sum(1 for *_, status in answers if status == 201)

            async def all_done(since: Any = since, created: int = created) -> bool:
                sut.check_alive()
                return len(await latencies_ms(sut, since)) >= created

            try:
                await wait_for(all_done, 60, "every booking to be fulfilled", interval=0.5)
            except BenchError as exc:  # reported as bookings not fulfilled, not a crash
                print(f"    scenario 3: {exc}", flush=True)
            e2e = await latencies_ms(sut, since)
            # A booking not fulfilled within the wait counts as infinitely late, so the
            # percentiles cannot look better for what never arrived.
            censored = e2e + [float("inf")] * max(0, created - len(e2e))
            runs.append(
                {
                    "repeat": repeat,
                    "requests": len(answers),
                    "created": created,
                    "bookings": await bookings_since(sut, since),
                    "fulfilled": len(e2e),
                    "e2e_p50_ms": percentile(censored, 50),
                    "e2e_p99_ms": percentile(censored, 99),
                    "fulfilled_p50_ms": percentile(e2e, 50),
                    "api_p99_ms": percentile([lat for _, lat, _ in answers], 99),
                }
            )
    p50 = Figure(tuple(r["e2e_p50_ms"] for r in runs))
    p99 = Figure(tuple(r["e2e_p99_ms"] for r in runs))
    lost = sum(r["created"] - r["fulfilled"] for r in runs)
    note = f"{lost} booking(s) not fulfilled" if lost else ""
    return Outcome(
        [
            Verdict(3, f"end-to-end p50 at {RATE:.0f} bookings/s", p50, "<=", 15, " ms", note=note),
            Verdict(3, f"end-to-end p99 at {RATE:.0f} bookings/s", p99, "<=", 60, " ms", note=note),
        ],
        {"runs": runs},
    )
