"""`python -m bench [SCENARIO ...]`: run the scenarios (all by default), write the results,
print one verdict line per figure. ``BENCH_QUICK=1`` for a smoke run with tiny sizes."""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
import time
import traceback

from bench import BenchError
from bench.config import sizes
from bench.report import write_raw, write_summary
from bench.scenarios import Outcome
from bench.stats import not_available

SCENARIOS = {
    1: "bench.scenarios.s1_api",
    2: "bench.scenarios.s2_runtime",
    3: "bench.scenarios.s3_latency",
    4: "bench.scenarios.s4_profile",
    5: "bench.scenarios.s5_burst",  # also scenario 8 (memory under the burst)
    6: "bench.scenarios.s6_scaling",
    7: "bench.scenarios.s7_replay",
    9: "bench.scenarios.s9_capacity",
    10: "bench.scenarios.s10_celery",
}
# A scenario that runs longer than this is stopped and reported as not available.
SCENARIO_LIMIT = 600.0
# 5: three bursts of 5,000 bookings, each drained; 9: three backlogs of 30,000 bookings
# (≈7.5 min on a quiet machine), each with a 70 s window.
SCENARIO_LIMITS = {5: 900.0, 9: 720.0}


async def run_one(number: int) -> Outcome:
    module = importlib.import_module(SCENARIOS[number])
    try:
        limit = SCENARIO_LIMITS.get(number, SCENARIO_LIMIT)
        outcome: Outcome = await asyncio.wait_for(module.run(sizes()), limit)
    except (BenchError, TimeoutError, Exception) as exc:  # e.g. PostgreSQL restarted under it
        traceback.print_exc()
        return Outcome([not_available(number, f"scenario {number}", f"could not run: {exc!r}")])
    return outcome


async def main(selected: list[int]) -> int:
    started = time.monotonic()
    outcomes: dict[int, Outcome] = {}
    for number in selected:
        print(f"--- scenario {number} ({SCENARIOS[number]})", flush=True)
        t0 = time.monotonic()
        outcomes[number] = await run_one(number)
        write_raw(number, outcomes[number])
        write_summary({number: outcomes[number]}, sizes(), time.monotonic() - t0)
        for verdict in outcomes[number].verdicts:
            print("   ", verdict.line(), flush=True)
        print(f"    ({time.monotonic() - t0:.0f} s)", flush=True)
    print(f"\n({time.monotonic() - started:.0f} s in all)")
    print("\n=== verdicts")
    for outcome in outcomes.values():
        for verdict in outcome.verdicts:
            print(verdict.line())
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    chosen = [int(arg) for arg in sys.argv[1:]] or sorted(SCENARIOS)
    sys.exit(asyncio.run(main(chosen)))
