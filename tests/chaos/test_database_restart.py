"""Scenario 5: PostgreSQL stopped (fast mode) and started again in the middle of a run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from tests.chaos.conftest import Launcher
from tests.chaos.figures import Figures
from tests.chaos.infra import postgresql_stopped
from tests.chaos.invariants import check
from tests.support.load import LoadDriver
from tests.support.size import Size

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]


async def test_postgresql_restarted_mid_run_gives_quick_503s_then_everything_recovers(
    system_factory: Launcher, size: Size, report: Callable[[Figures], None]
) -> None:
    started = time.monotonic()
    # Short: every other test on this machine loses its database meanwhile.
    down, total = size.pick(2.0, 5.0), size.pick(80, 600)
    async with system_factory() as system:
        load = LoadDriver(system.base_url, concurrency=6, patience=90)
        driving = asyncio.create_task(load.run(total, rate=total / size.pick(7, 20)))
        await asyncio.sleep(1.5)
        async with postgresql_stopped() as down_at:
            await asyncio.sleep(down)
            up_at = time.monotonic()
        record = await driving
        during = record.between(down_at, up_at)
        statuses = {a.status for a in during}
        assert 503 in statuses, f"no 503 while PostgreSQL was down: {statuses}"
        slowest = max(a.latency for a in during)
        assert slowest < 2.0, f"an answer took {slowest:.2f}s while PostgreSQL was down"
        figures = await check(
            system,
            record,
            scenario="5. PostgreSQL restarted mid-run",
            faults=1,
            started=started,
            duplicates_allowed=True,
        )
        assert all(s.alive for s in system.services.values()), "a process died"
    print(f"answers while down: {sorted(map(str, statuses))}, slowest {slowest:.3f}s")
    report(figures)
