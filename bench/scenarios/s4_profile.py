"""Scenario 4: the seed's profile. Simulated steps of 1000 / 500 / 1000 ms (notification /
email / voucher), prefetch 50. At a steady 50 bookings/s the API's p99 must stay small (the
synchronous design would answer in 2,530 ms); then, with a backlog in every queue, each
consumer process must keep at least 80% of its prefetch in flight (rate × step ÷ prefetch):
measured with a backlog in its own queue, then (reported beside it) in all three at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.config import RAW, Sizes
from bench.e2e import db_now
from bench.harness import Stack, publish_all, stack, wait_for
from bench.openloop import generate
from bench.payloads import confirmed_messages
from bench.scenarios import Outcome
from bench.stats import Figure, Verdict, percentile
from shared import registry
from shared.messaging.topology import CONSUMER_SERVICES, CONSUMERS, consumer_topology

STEP_MS = {service.name: service.seed_latency_ms for service in registry.CONSUMERS}
PREFETCH = 50
RATE = 50.0


async def _drain_backlogs(
    sut: Stack, services: tuple[str, ...], seconds: float
) -> dict[str, float]:
    """Fill the queues of ``services`` with ``seconds`` of work at full concurrency; return
    each one's average messages in flight ÷ prefetch while it drains that backlog."""
    since = await db_now(sut)
    counts = {s: int(PREFETCH * 1000 / STEP_MS[s] * seconds) for s in services}
    for service, count in counts.items():
        queue = consumer_topology(service).queue
        await publish_all(sut.amqp_url, confirmed_messages(count), routing_key=queue)
    spans: dict[str, float] = {}
    for service, count in counts.items():
        query = (
            f"SELECT count(*) AS n, extract(epoch FROM max(processed_at) - min(processed_at)) "
            f"AS span FROM {service}.processed_events WHERE processed_at >= $1"
        )

        async def drained(query: str = query, count: int = count) -> bool:
            sut.check_alive()
            return int((await sut.sql(query, since))[0]["n"]) >= count

        await wait_for(drained, seconds * 4 + 60, f"{service} to drain its backlog", interval=0.25)
        row = (await sut.sql(query, since))[0]
        # processed_at is when a message's transaction began; the last one ends one step later
        spans[service] = float(row["span"]) + STEP_MS[service] / 1000
    return {s: counts[s] / spans[s] * (STEP_MS[s] / 1000) / PREFETCH for s in services}


async def _settle(sut: Stack) -> None:
    """Wait for the work left from before (the steady load, an earlier backlog, their
    progress reports) to end, so that a backlog's drain has the machine to itself."""

    async def idle() -> bool:
        sut.check_alive()
        for names in CONSUMERS.values():
            if (await sut.queue_counts(names.queue))[0]:
                return False
        for schema in CONSUMERS:
            query = f"SELECT count(*) AS n FROM {schema}.outbox WHERE published_at IS NULL"
            if int((await sut.sql(query))[0]["n"]):
                return False
        return True

    await wait_for(idle, 120, "the system to go idle", interval=0.5)
    await asyncio.sleep(max(STEP_MS.values()) / 1000)  # the deliveries still in hand


async def _in_flight(sut: Stack, seconds: float) -> tuple[dict[str, float], dict[str, float]]:
    """Each consumer's share with a backlog in its own queue only (what the target is about:
    one process's asyncio concurrency), then with all three backlogs at once (which measures
    how the two cores are shared as much as any one process)."""
    alone: dict[str, float] = {}
    for service in CONSUMER_SERVICES:
        await _settle(sut)
        alone |= await _drain_backlogs(sut, (service,), seconds)
    await _settle(sut)
    together = await _drain_backlogs(sut, CONSUMER_SERVICES, seconds)
    return alone, together


async def run(sizes: Sizes) -> Outcome:
    runs: list[dict[str, Any]] = []
    count = int(RATE * sizes.profile_seconds)
    async with stack("profile") as sut:
        url = await sut.system(STEP_MS, {s: PREFETCH for s in STEP_MS})
        for repeat in range(sizes.repeats):
            answers = await generate(url, RATE, count, RAW / f"s4_{repeat}.json", repeat * count)
            latencies = [lat for _, lat, status in answers]
            errors = sum(1 for *_, status in answers if status != 201)
            alone, together = await _in_flight(sut, sizes.profile_backlog_seconds)
            runs.append(
                {
                    "repeat": repeat,
                    "api_p99_ms": percentile(latencies, 99),
                    "api_p50_ms": percentile(latencies, 50),
                    "errors": errors,
                    "in_flight_share": alone,
                    "in_flight_share_all_at_once": together,
                }
            )
    verdicts = [
        Verdict(
            4,
            "POST /bookings p99 at 50 bookings/s, seed's steps running",
            Figure(tuple(r["api_p99_ms"] for r in runs)),
            "<=",
            30,
            unit=" ms",
            note="synchronous design: 2,530 ms",
        )
    ]
    for service in CONSUMER_SERVICES:
        verdicts.append(
            Verdict(
                4,
                f"{service}: in flight ÷ prefetch ({STEP_MS[service]} ms step, prefetch 50)",
                Figure(tuple(r["in_flight_share"][service] for r in runs)),
                ">=",
                0.8,
                unit="×",
                note="all three draining at once: "
                + ", ".join(f"{r['in_flight_share_all_at_once'][service]:.2f}" for r in runs),
            )
        )
    return Outcome(verdicts, {"runs": runs})
