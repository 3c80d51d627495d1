"""Scenarios 1, 2 and 9: processes die (SIGKILL) or are stopped (SIGTERM) under load."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Awaitable, Callable

import pytest

from shared.messaging.topology import CONSUMERS
from tests.chaos.conftest import Launcher
from tests.chaos.figures import Figures
from tests.chaos.infra import queue_stats
from tests.chaos.invariants import check
from tests.chaos.system import CONSUMER_SERVICES, SERVICES, System
from tests.support.load import LoadDriver
from tests.support.size import Size
from tests.support.stack import effects, fetchval, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]


async def test_sigkilling_random_consumers_again_and_again_loses_no_booking(
    system_factory: Launcher, size: Size, report: Callable[[Figures], None]
) -> None:
    started = time.monotonic()
    total, kills = size.pick(100, 2000), size.pick(3, 20)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"random seed {seed}")
    # A little work per message keeps each consumer holding messages when it is killed.
    async with system_factory(SIMULATED_LATENCY_MS="20") as system:
        load = LoadDriver(system.base_url, concurrency=8)
        driving = asyncio.create_task(load.run(total, rate=total / (kills * 2.5)))
        for _ in range(kills):
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            victim = rng.choice(system.consumers)
            code, _ = await victim.signal(signal.SIGKILL)
            assert code == -signal.SIGKILL
            await system.restart(victim.name)
        record = await driving
        figures = await check(
            system,
            record,
            scenario="1. SIGKILL random consumers",
            faults=kills,
            started=started,
            duplicates_allowed=True,
        )
    report(figures)


async def _unpublished(system: System) -> int:
    return int(
        await fetchval(system.env, "SELECT count(*) FROM booking.outbox WHERE published_at IS NULL")
    )


async def _is_zero(count: Awaitable[int]) -> bool:
    return await count == 0


async def _all_effects_at_least(system: System, count: int) -> bool:
    for name in CONSUMER_SERVICES:
        if await effects(system.env, name) < count:
            return False
    return True


async def test_sigkilling_the_api_between_commit_and_publish_publishes_every_event_once(
    system_factory: Launcher, size: Size, report: Callable[[Figures], None]
) -> None:
    started = time.monotonic()
    batch = size.pick(20, 200)
    # Confirms wait long, so the API is surely killed while it still waits for them.
    async with system_factory(AMQP_PUBLISH_TIMEOUT="30") as system:
        booking, load = system.services["booking"], LoadDriver(system.base_url, concurrency=4)

        # Committed, never sent: the API's broker link is cut, so its rows stay unpublished.
        await system.api_link.cut()
        await load.run(batch)
        assert await _unpublished(system) == batch
        assert (await booking.signal(signal.SIGKILL))[0] == -signal.SIGKILL
        await system.api_link.restore()
        await system.restart("booking")
        await wait_until(lambda: _is_zero(_unpublished(system)), what="first batch published")

        # Sent, never confirmed: the broker takes what the relay's pass publishes (and the
        # consumers handle it) but its confirms are held, so when the API dies those rows are
        # unpublished too. Rows committed during that pass wait, unsent, for the next one.
        await system.api_link.deafen()
        await load.run(batch, first=batch, concurrency=batch)
        await wait_until(
            lambda: _all_effects_at_least(system, batch + 1), timeout=30, what="second batch sent"
        )
        await asyncio.sleep(1.0)  # the rest of the pass reaches the consumers
        handled = min([await effects(system.env, name) for name in CONSUMER_SERVICES]) - batch
        assert await _unpublished(system) == batch, "the confirms were not held"
        assert (await booking.signal(signal.SIGKILL))[0] == -signal.SIGKILL
        await system.api_link.restore()
        await system.restart("booking")
        print(f"killed with {handled} sent-but-unconfirmed and {batch - handled} unsent rows")

        figures = await check(
            system,
            load.record,
            scenario="2. SIGKILL API between commit and publish",
            faults=2,
            started=started,
        )
    # Each consumer got the sent-but-unconfirmed rows twice and acted once.
    assert figures.redeliveries_absorbed >= 3 * handled
    report(figures)


async def _released(system: System, queue: str, timeout: float = 20.0) -> None:
    """The broker shows no consumer and nothing unacked on ``queue`` (its view lags the
    process's exit by the time it takes to see the connection close)."""
    deadline = time.monotonic() + timeout
    while (stats := (await queue_stats(system.env.vhost))[queue]).consumers or stats.unacked:
        assert time.monotonic() < deadline, f"{queue} still held after {timeout}s: {stats}"
        await asyncio.sleep(0.5)


async def test_sigterm_to_each_service_under_load_exits_0_in_its_grace_leaving_nothing_unacked(
    system_factory: Launcher, size: Size, report: Callable[[Figures], None]
) -> None:
    started = time.monotonic()
    total, grace, publish_timeout = size.pick(60, 600), 5.0, 5.0
    async with system_factory(
        SIMULATED_LATENCY_MS="50",
        SHUTDOWN_GRACE=str(grace),
        AMQP_PUBLISH_TIMEOUT=str(publish_timeout),
    ) as system:
        load = LoadDriver(system.base_url, concurrency=6)
        driving = asyncio.create_task(load.run(total, rate=total / size.pick(8, 20)))
        for name in SERVICES:
            await asyncio.sleep(size.pick(0.5, 2.0))
            code, seconds = await system.services[name].signal(signal.SIGTERM, timeout=60)
            print(f"SIGTERM {name}: exit {code} after {seconds:.1f}s")
            assert code == 0, f"{name} exited {code}"
            # The grace for messages in hand, the last relay pass, and the interpreter's exit.
            assert seconds < grace + publish_timeout + 5, f"{name} took {seconds:.1f}s"
            if name != "booking":
                await _released(system, CONSUMERS[name].queue)
            await system.restart(name)
        record = await driving
        figures = await check(
            system,
            record,
            scenario="9. SIGTERM each service under load",
            faults=len(SERVICES),
            started=started,
            duplicates_allowed=True,
        )
    report(figures)
