"""Scenarios 1, 2 and 9: processes die (SIGKILL) or are stopped (SIGTERM) under load."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Callable

import pytest

from tests.chaos.conftest import Launcher, Size
from tests.chaos.invariants import Figures, check
from tests.chaos.load import LoadDriver

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]


async def test_sigkilling_random_consumers_again_and_again_loses_no_booking(
    system_factory: Launcher, size: Size, report: Callable[[Figures], None]
) -> None:
    started = time.monotonic()
    total, kills = size.pick(150, 2000), size.pick(4, 20)
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
