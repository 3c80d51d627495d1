"""The capacity model (README, "Kubernetes", "Capacity model"): how many replicas of each
consumer, and of booking, a rate of bookings needs, from the benchmark's figures.

    python -m bench.capacity 50 200 500 1000      # the README's table, for these rates

A replica whose step waits on a remote drains PREFETCH x (its measured in-flight ratio) per
step time: the ratios are scenario 4's, read from bench/results/summary.json, the step times
the seed's (shared/registry.py). A replica that does not wait is bound by its CPU: the
figures below were measured in scenarios 3 and 5 (README, "What limits it"), not written
to summary.json. Each replica is planned at HEADROOM of what it can do.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

from bench.config import RESULTS
from shared import registry

PREFETCH = 50  # scenario 4's, and the services' default
HEADROOM = 0.7
# Scenario 3's CPU sampling: the email service sent ≈125 emails/s at 82% of a core.
# Scenario 5: 5,000 bookings drained by every consumer within 50 s while the API ran too,
# a lower bound for those not sampled.
CPU_BOUND_PER_REPLICA = {"email": 125.0}
CPU_BOUND_LOWER_BOUND = 100.0
# Scenario 1 measured 500-720 bookings/s with the whole system on 2 cores; a replica with a
# core of its own is planned at no more than the least of those (an estimate).
BOOKING_PER_REPLICA = 500.0
BOOKING_MIN_REPLICAS = 2  # the HorizontalPodAutoscaler's minimum


def in_flight_ratios(summary: dict[str, Any]) -> dict[str, float]:
    """Scenario 4's median in-flight ratio of each consumer (its backlog alone)."""
    found = {}
    for row in summary["verdicts"]:
        named = re.match(r"(\w+): in flight", row["name"])
        if row["scenario"] == 4 and named:
            found[named.group(1)] = float(row["figure"]["median"])
    missing = set(registry.NAMES) - set(found)
    if missing:
        raise ValueError(f"summary.json has no scenario 4 figure for {', '.join(sorted(missing))}")
    return found


def per_replica(summary: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Each consumer's messages/s per replica: (the seed's waiting step, CPU-bound)."""
    ratios = in_flight_ratios(summary)
    return {
        s.name: (
            PREFETCH * ratios[s.name] * 1000 / s.seed_latency_ms,
            CPU_BOUND_PER_REPLICA.get(s.name, CPU_BOUND_LOWER_BOUND),
        )
        for s in registry.CONSUMERS
    }


def replicas(rate: float, each: float) -> int:
    return max(1, math.ceil(rate / (each * HEADROOM)))


def table(rates: list[float], summary: dict[str, Any]) -> str:
    rows = per_replica(summary)
    head = ["bookings/s", *registry.NAMES, "booking", "kind"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for rate in rates:
        cells = [f"{rate:,.0f}"]
        cells += [" · ".join(str(replicas(rate, each)) for each in rows[n]) for n in registry.NAMES]
        booking = max(BOOKING_MIN_REPLICAS, replicas(rate, BOOKING_PER_REPLICA))
        cells += [str(booking), "estimate"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    summary = json.loads((RESULTS / "summary.json").read_text())
    print(table([float(a) for a in argv] or [50, 200, 500, 1000], summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
