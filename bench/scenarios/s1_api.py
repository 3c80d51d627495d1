"""Scenario 1: ``POST /bookings`` of our booking service, alone and with the three consumers
running, against its baselines: a bare single-INSERT endpoint, a naive dual write, and the
seeds' design (the INSERT then three Celery ``.delay()``, without and with
``confirm_publish``). All driven by wrk in the same run, alternating targets (ABC, CBA) to
cancel drift; the consumers are started for the one target that measures them and stopped
for the others. At 64 clients only bare, booking alone and the dual write are measured."""

from __future__ import annotations

import contextlib
from typing import Any

import aiormq

from bench import BenchError, celery_seed, wrk
from bench.config import Sizes
from bench.harness import Stack, amqp_channel, stack, wait_for, wait_http
from bench.plots import bar_plot
from bench.scenarios import Outcome
from bench.stats import Figure, Verdict, not_available, paired_ratio
from shared.messaging.topology import CONSUMER_SERVICES, consumer_topology
from tests.support.processes import free_port

WITH_CONSUMERS = "booking+consumers"
# booking and booking+consumers side by side: the consumers start and stop once a round.
TARGETS = ("bare", "booking", WITH_CONSUMERS, "dualwrite", "celery", "celery-confirm")
TARGETS_64 = ("bare", "booking", "dualwrite")
BASELINE_MODES = ("bare", "dualwrite", "celery", "celery-confirm")
DRAIN_TIMEOUT = 90.0
RPS = "requests_per_second"


def targets_at(clients: int) -> tuple[str, ...]:
    return TARGETS if clients == 32 else TARGETS_64


async def _start_baselines(base: Stack) -> dict[str, str]:
    await base.declare_topology()
    urls = {}
    for mode in BASELINE_MODES:  # one after the other: they create the same tables
        port = free_port()
        base.start(mode, ["-m", "bench.baseline_api"], base.service_env(port=port, mode=mode))
        urls[mode] = f"http://127.0.0.1:{port}"
        await wait_http(f"{urls[mode]}/hotels", base)
    return urls


async def _purge(url: str, queues: list[str]) -> None:
    for name in queues:
        # A channel each: purging a queue not declared yet (Celery's, before the first
        # .delay()) closes the channel, and there is nothing to purge.
        with contextlib.suppress(aiormq.exceptions.ChannelNotFoundEntity):
            try:
                async with amqp_channel(url) as channel:
                    await (await channel.get_queue(name, ensure=False)).purge()
            except TimeoutError:  # a broker too busy to answer: measured anyway, and said
                print(f"    scenario 1: could not purge {name}: the broker timed out", flush=True)


FULFILMENT_QUEUES = [consumer_topology(s).queue for s in CONSUMER_SERVICES]


class Consumers:
    """The three consumers of the system under test, running only while measured."""

    def __init__(self, sut: Stack, smtp_port: int) -> None:
        self.sut, self.smtp_port, self.running = sut, smtp_port, False

    async def run(self, running: bool) -> None:
        if running == self.running:
            return
        if running:
            await _purge(self.sut.amqp_url, FULFILMENT_QUEUES)  # the booking-alone runs' events
            for service in CONSUMER_SERVICES:
                await self.sut.consumer(service, smtp_port=self.smtp_port)
            for service in CONSUMER_SERVICES:
                await self.sut.wait_consumers(service, 1)
        else:
            for service in CONSUMER_SERVICES:
                await self.sut.stop(service)
        self.running = running


async def _settled(sut: Stack, base: Stack, consumers: Consumers) -> None:
    """Before each measurement: no backlog from an earlier one. The events nobody consumes
    (booking alone, the dual write, Celery's tasks) are purged; the progress reports the
    consumers sent back are left for booking to finish."""
    if not consumers.running:
        await _purge(sut.amqp_url, FULFILMENT_QUEUES)
    await _purge(base.amqp_url, [*FULFILMENT_QUEUES, celery_seed.app.conf.task_default_queue])

    async def reports_done() -> bool:
        sut.check_alive()
        return (await sut.queue_counts(consumer_topology("booking").queue))[0] == 0

    try:
        await wait_for(reports_done, DRAIN_TIMEOUT, "booking's reports to drain", interval=0.25)
    except (BenchError, TimeoutError) as exc:  # measured anyway; the log says why
        print(f"    scenario 1: {exc}", flush=True)


async def run(sizes: Sizes) -> Outcome:
    if not wrk.available():
        return Outcome([not_available(1, "booking API throughput", "wrk is not installed")])
    async with stack("api") as sut, stack("api_base") as base:
        await sut.declare_topology()  # so waiting for the consumers can look at their queues
        consumers = Consumers(sut, await sut.smtp_sink())
        urls = {"booking": await sut.booking()}
        urls[WITH_CONSUMERS] = urls["booking"]
        urls.update(await _start_baselines(base))
        for target in TARGETS:  # warm-up: pools filled, code paths hot
            await consumers.run(target == WITH_CONSUMERS)
            await wrk.run(urls[target], 32, 2)
        runs: list[dict[str, Any]] = []
        for repeat in range(sizes.repeats):
            for clients in sizes.api_clients:
                order = targets_at(clients)
                for target in order if repeat % 2 == 0 else order[::-1]:
                    await consumers.run(target == WITH_CONSUMERS)
                    await _settled(sut, base, consumers)
                    result = await wrk.run(urls[target], clients, sizes.api_seconds)
                    runs.append({"repeat": repeat, "target": target, **result.as_dict})
        await consumers.run(False)
    return _outcome(runs, sizes)


def _medians(runs: list[dict[str, Any]], clients: int, key: str) -> dict[str, float]:
    return {
        t: Figure(
            tuple(r[key] for r in runs if r["target"] == t and r["clients"] == clients)
        ).median
        for t in targets_at(clients)
    }


def _outcome(runs: list[dict[str, Any]], sizes: Sizes) -> Outcome:
    verdicts = []
    for clients in sizes.api_clients:
        context = {key: _medians(runs, clients, key) for key in (RPS, "p50_ms", "p99_ms")}
        seen = ", ".join(f"{t} {v:,.0f}" for t, v in context[RPS].items())

        def ratio(num: str, den: str, key: str = RPS, clients: int = clients) -> Figure:
            return paired_ratio(runs, num, den, key, clients=clients)

        verdicts.append(
            Verdict(
                1,
                f"booking alone/bare throughput, {clients} clients",
                ratio("booking", "bare"),
                ">=",
                0.6,
                unit="×",
                note=f"requests/s: {seen}",
                context=context,
            )
        )
        if clients != 32:
            continue
        verdicts += [
            Verdict(
                1,
                "booking alone/bare p99, 32 clients",
                ratio("booking", "bare", "p99_ms"),
                "<=",
                2.0,
                unit="×",
            ),
            Verdict(
                1,
                "booking with the consumers/bare throughput, 32 clients",
                ratio(WITH_CONSUMERS, "bare"),
                ">=",
                0.35,
                unit="×",
            ),
            Verdict(
                1,
                "booking alone/Celery .delay() throughput, 32 clients",
                ratio("booking", "celery"),
                ">=",
                1.0,
                unit="×",
                note="the seeds' design; issue 18 measured 2.2×",
            ),
            Verdict(
                1,
                "booking alone/Celery confirm_publish throughput, 32 clients",
                ratio("booking", "celery-confirm"),
                ">=",
                1.0,
                unit="×",
                note="issue 18 measured 4×",
            ),
        ]
    errors = {t: sum(r["errors"] for r in runs if r["target"] == t) for t in TARGETS}
    if any(errors.values()):
        text = ", ".join(f"{t} {n}" for t, n in errors.items() if n)
        for verdict in verdicts:
            verdict.note = "; ".join(filter(None, [verdict.note, f"errors: {text}"]))
    plot = bar_plot(
        "s1_api.png",
        "Scenario 1: POST /bookings, requests/s (median of runs, min–max bars)",
        {
            f"{t} @{c}": Figure(
                tuple(r[RPS] for r in runs if r["target"] == t and r["clients"] == c)
            )
            for c in sizes.api_clients
            for t in targets_at(c)
        },
        "requests/s",
    )
    return Outcome(verdicts, {"runs": runs}, [plot])
