"""Scenario 6, scaling out: 1, 2 and 4 replicas of the email consumer (500 ms step, prefetch
10) drain a backlog sized for ``scaling_seconds`` of work; throughput against one replica
measured in the same repetition."""

from __future__ import annotations

from typing import Any

from bench.config import Sizes
from bench.e2e import db_now
from bench.harness import Stack, publish_all, stack, wait_for
from bench.payloads import confirmed_messages
from bench.plots import line_plot
from bench.scenarios import Outcome
from bench.stats import Figure, Verdict
from shared.messaging.topology import consumer_topology

REPLICAS = (1, 2, 4)
STEP_MS = 500
PREFETCH = 10
SERVICE = "email"


async def _throughput(sut: Stack, smtp: int, replicas: int, seconds: float) -> float:
    names = [f"email-{replicas}-{i}" for i in range(replicas)]
    for name in names:
        await sut.consumer(
            SERVICE, name, smtp_port=smtp, prefetch=PREFETCH, simulated_latency_ms=STEP_MS
        )
    try:
        await sut.wait_consumers(SERVICE, replicas, timeout=90)
        since = await db_now(sut)
        count = int(replicas * PREFETCH * 1000 / STEP_MS * seconds)
        queue = consumer_topology(SERVICE).queue
        await publish_all(sut.amqp_url, confirmed_messages(count), routing_key=queue)
        query = (
            "SELECT count(*) AS n, extract(epoch FROM max(processed_at) - min(processed_at)) "
            "AS span FROM email.processed_events WHERE processed_at >= $1"
        )

        async def drained() -> bool:
            sut.check_alive()
            return int((await sut.sql(query, since))[0]["n"]) >= count

        await wait_for(drained, seconds * 6 + 60, f"{replicas} replica(s) to drain", interval=0.25)
        row = (await sut.sql(query, since))[0]
        return count / (float(row["span"]) + STEP_MS / 1000)
    finally:
        for name in names:
            await sut.stop(name)


async def run(sizes: Sizes) -> Outcome:
    runs: list[dict[str, Any]] = []
    async with stack("scaling") as sut:
        smtp = await sut.smtp_sink()
        await sut.declare_topology()
        for repeat in range(sizes.repeats):
            order = REPLICAS if repeat % 2 == 0 else REPLICAS[::-1]
            for replicas in order:
                rate = await _throughput(sut, smtp, replicas, sizes.scaling_seconds)
                runs.append({"repeat": repeat, "replicas": replicas, "rate": rate})
    return _outcome(runs, sizes)


def _rates(runs: list[dict[str, Any]], replicas: int) -> list[float]:
    return [r["rate"] for r in sorted(runs, key=lambda r: r["repeat"]) if r["replicas"] == replicas]


def _outcome(runs: list[dict[str, Any]], sizes: Sizes) -> Outcome:
    single = _rates(runs, 1)
    verdicts = []
    for replicas, target in ((2, 1.8), (4, 3.5)):
        ratio = Figure(tuple(a / b for a, b in zip(_rates(runs, replicas), single, strict=False)))
        verdicts.append(
            Verdict(
                6,
                f"{replicas} email replicas ÷ 1 replica",
                ratio,
                ">=",
                target,
                unit="×",
                context={"msg_per_s": Figure(tuple(_rates(runs, replicas))).median},
            )
        )
    medians = [Figure(tuple(_rates(runs, n))).median for n in REPLICAS]
    plot = line_plot(
        "s6_scaling.png",
        f"Scenario 6: email replicas, {STEP_MS} ms step, prefetch {PREFETCH} (median of "
        f"{sizes.repeats})",
        {
            "measured": (list(REPLICAS), medians),
            "ideal (prefetch ÷ step × replicas)": (
                list(REPLICAS),
                [n * PREFETCH * 1000 / STEP_MS for n in REPLICAS],
            ),
        },
        "replicas",
        "emails/s",
    )
    return Outcome(verdicts, {"runs": runs}, [plot])
