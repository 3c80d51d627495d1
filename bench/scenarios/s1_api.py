"""Scenario 1: ``POST /bookings`` on the full path (availability, reservation, outbox, relay,
consumers running) against a bare single-INSERT endpoint and a naive dual write, all driven
by wrk in the same run, alternating targets to cancel drift."""

from __future__ import annotations

from typing import Any

from bench import BenchError, wrk
from bench.config import Sizes
from bench.harness import Stack, amqp_channel, stack, wait_for, wait_http
from bench.plots import bar_plot
from bench.scenarios import Outcome
from bench.stats import Figure, Verdict, not_available
from shared.messaging.topology import CONSUMER_SERVICES, consumer_topology
from tests.support.processes import free_port

TARGETS = ("bare", "booking", "dualwrite")
DRAIN_TIMEOUT = 90.0


async def _start_baselines(base: Stack) -> dict[str, str]:
    await base.declare_topology()
    urls = {}
    for mode in ("bare", "dualwrite"):  # one after the other: both create the same table
        port = free_port()
        base.start(mode, ["-m", "bench.baseline_api"], base.service_env(port=port, mode=mode))
        urls[mode] = f"http://127.0.0.1:{port}"
        await wait_http(f"{urls[mode]}/hotels", base)
    return urls


async def _settled(sut: Stack, base: Stack) -> None:
    """Wait until the consumers have caught up, so no measurement pays for an earlier
    one's backlog; the dual write's queues are purged (nothing consumes them)."""

    async def drained() -> bool:
        sut.check_alive()
        counts = [await sut.queue_counts(consumer_topology(s).queue) for s in CONSUMER_SERVICES]
        return all(ready == 0 for ready, _ in counts)

    try:
        await wait_for(drained, DRAIN_TIMEOUT, "the consumers to drain", interval=0.25)
    except BenchError as exc:  # measured anyway; the log says the backlog was still there
        print(f"    scenario 1: {exc}", flush=True)
    async with amqp_channel(base.amqp_url) as channel:
        for service in CONSUMER_SERVICES:
            queue = await channel.get_queue(consumer_topology(service).queue, ensure=False)
            await queue.purge()


async def run(sizes: Sizes) -> Outcome:
    name = "booking API throughput ÷ bare endpoint, 32 clients"
    if not wrk.available():
        return Outcome([not_available(1, name, "wrk is not installed")])
    async with stack("api") as sut, stack("api_base") as base:
        await sut.declare_topology()  # so waiting for the consumers can look at their queues
        smtp = await sut.smtp_sink()
        urls = {"booking": await sut.booking()}
        for service in CONSUMER_SERVICES:
            await sut.consumer(service, smtp_port=smtp)
        for service in CONSUMER_SERVICES:
            await sut.wait_consumers(service, 1)
        urls.update(await _start_baselines(base))
        for target in TARGETS:  # warm-up: pools filled, code paths hot
            await wrk.run(urls[target], 32, 2)
        runs: list[dict[str, Any]] = []
        for repeat in range(sizes.repeats):
            order = TARGETS if repeat % 2 == 0 else TARGETS[::-1]
            for clients in sizes.api_clients:
                for target in order:
                    await _settled(sut, base)
                    result = await wrk.run(urls[target], clients, sizes.api_seconds)
                    runs.append({"repeat": repeat, "target": target, **result.as_dict})
        await _settled(sut, base)
    return _outcome(runs, sizes)


def _pick(runs: list[dict[str, Any]], target: str, clients: int, key: str) -> list[float]:
    return [r[key] for r in runs if r["target"] == target and r["clients"] == clients]


def _ratio(
    runs: list[dict[str, Any]], num: str, den: str, clients: int, key: str, repeats: int
) -> Figure:
    a, b = _pick(runs, num, clients, key), _pick(runs, den, clients, key)
    return Figure(tuple(a[i] / b[i] for i in range(min(len(a), len(b), repeats))))


def _outcome(runs: list[dict[str, Any]], sizes: Sizes) -> Outcome:
    verdicts = []
    rps = "requests_per_second"
    for clients in sizes.api_clients:
        context = {
            t: {
                "rps": Figure(tuple(_pick(runs, t, clients, rps))).median,
                "p99_ms": Figure(tuple(_pick(runs, t, clients, "p99_ms"))).median,
                "p50_ms": Figure(tuple(_pick(runs, t, clients, "p50_ms"))).median,
            }
            for t in TARGETS
        }
        throughput = _ratio(runs, "booking", "bare", clients, rps, sizes.repeats)
        verdicts.append(
            Verdict(
                1,
                f"booking/bare throughput, {clients} clients",
                throughput,
                ">=",
                0.5,
                unit="×",
                context=context,
            )
        )
        naive = _ratio(runs, "booking", "dualwrite", clients, rps, sizes.repeats)
        verdicts.append(
            Verdict(
                1, f"booking/dual-write throughput, {clients} clients", naive, ">=", 1.5, unit="×"
            )
        )
        if clients == 32:
            p99 = _ratio(runs, "booking", "bare", clients, "p99_ms", sizes.repeats)
            verdicts.append(Verdict(1, "booking/bare p99, 32 clients", p99, "<=", 2.0, unit="×"))
    errors = {t: sum(r["errors"] for r in runs if r["target"] == t) for t in TARGETS}
    if any(errors.values()):
        text = ", ".join(f"{t} {n}" for t, n in errors.items() if n)
        for verdict in verdicts:
            verdict.note = f"non-2xx/socket errors: {text}"
    plot = bar_plot(
        "s1_api.png",
        "Scenario 1: POST /bookings, requests/s (median of runs, min–max bars)",
        {
            f"{t} @{c}": Figure(tuple(_pick(runs, t, c, rps)))
            for c in sizes.api_clients
            for t in TARGETS
        },
        "requests/s",
    )
    return Outcome(verdicts, {"runs": runs}, [plot])
