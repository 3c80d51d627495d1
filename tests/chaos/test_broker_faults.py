"""Scenarios 3, 4 and 8: the broker link cut or black-holed, and a broker memory alarm."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from shared.messaging.topology import CONSUMERS
from tests.chaos.conftest import Launcher
from tests.chaos.figures import Figures
from tests.chaos.infra import memory_alarm, queue_stats
from tests.chaos.invariants import check
from tests.chaos.system import SERVICES, System
from tests.support.load import LoadDriver
from tests.support.size import Size
from tests.support.stack import fetchval

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]
CONSUMING = ": consuming (prefetch"


def _subscriptions(system: System) -> dict[str, int]:
    """How often each process has (re)subscribed since it started, from its own log."""
    return {name: system.services[name].log_since_start().count(CONSUMING) for name in SERVICES}


async def _resubscribed(system: System, before: dict[str, int], timeout: float = 45.0) -> None:
    """Every process subscribed again after the fault, and the broker itself shows at least
    one consumer on every work queue (the failure mode of robust connections: connected,
    but 0 consumers)."""
    deadline = time.monotonic() + timeout
    while True:
        again = _subscriptions(system)
        if all(again[name] > before[name] for name in SERVICES):
            stats = await queue_stats(system.env.vhost)
            empty = [n for n in SERVICES if stats[CONSUMERS[n].queue].consumers < 1]
            if not empty:
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"not consuming again after {timeout}s: {again} vs {before}")
        await asyncio.sleep(0.5)


async def test_consumers_resume_by_themselves_after_the_broker_link_is_cut_or_goes_silent(
    system_factory: Launcher, size: Size, report: Callable[[Figures], None]
) -> None:
    started = time.monotonic()
    # aio-pika gives up on a silent connection after 3 * (heartbeat + 1) s, RabbitMQ after
    # about 2 heartbeats: the silence outlasts both, so only heartbeats can end it.
    heartbeat, cycles = 1, size.pick(1, 3)
    total = size.pick(80, 600)
    async with system_factory(heartbeat=heartbeat) as system:
        pids = {name: service.pid for name, service in system.services.items()}
        load = LoadDriver(system.base_url, concurrency=6)
        driving = asyncio.create_task(load.run(total, rate=total / (cycles * 25)))
        faults = 0
        for _ in range(cycles):
            # A reset link (5 s), then a silent one for longer than the heartbeat: only the
            # heartbeat can tell a process its connection is dead.
            for fault, seconds in (
                (system.cut, 5.0),
                (system.blackhole, 3.0 * (heartbeat + 1) + 1),
            ):
                before = _subscriptions(system)
                await fault()
                await asyncio.sleep(seconds)
                await system.restore()
                faults += 1
                await _resubscribed(system, before)
        record = await driving
        figures = await check(
            system,
            record,
            scenario="3. broker link cut 5 s / silent > heartbeat",
            drain_timeout=40,
            faults=faults,
            started=started,
        )
        assert {name: s.pid for name, s in system.services.items()} == pids, "a process restarted"
    report(figures)


async def test_a_black_holed_broker_never_hangs_a_request_and_events_flow_once_it_answers(
    system_factory: Launcher, size: Size, report: Callable[[Figures], None]
) -> None:
    started = time.monotonic()
    freeze, total = size.pick(5.0, 20.0), size.pick(45, 400)
    publish_timeout = 2.0
    async with system_factory(
        AMQP_PUBLISH_TIMEOUT=str(publish_timeout), AMQP_CONNECT_TIMEOUT="2"
    ) as system:
        booking = system.services["booking"]
        load = LoadDriver(system.base_url, concurrency=4)
        await load.run(total // 3)
        await system.blackhole()
        frozen_at = time.monotonic()
        await load.run(total // 3, first=total // 3, rate=(total // 3) / freeze)
        await asyncio.sleep(max(0.0, freeze - (time.monotonic() - frozen_at)))
        await system.restore()
        thawed_at = time.monotonic()
        await load.run(total - 2 * (total // 3), first=2 * (total // 3))
        during = load.record.between(frozen_at, thawed_at)
        assert during, "no request was made while the broker was silent"
        assert all(a.status == 201 for a in during), {a.status for a in during}
        slowest = max(a.latency for a in during)
        assert slowest < 1.0, f"a booking took {slowest:.2f}s while the broker was silent"
        # The relay's confirm waits gave up after their timeout (and were retried), never hung.
        relay_gave_up = booking.log_since_start().count("outbox relay booking: ")
        assert relay_gave_up >= 1, "the relay never reported the silent broker"
        figures = await check(
            system,
            load.record,
            scenario="4. broker black-holed",
            faults=1,
            started=started,
        )
    print(f"slowest booking while black-holed: {slowest:.3f}s; relay timeouts: {relay_gave_up}")
    report(figures)


async def test_a_broker_memory_alarm_keeps_bookings_accepted_and_events_flow_when_it_clears(
    system_factory: Launcher, size: Size, report: Callable[[Figures], None]
) -> None:
    started = time.monotonic()
    alarm, total = size.pick(4.0, 20.0), size.pick(45, 400)
    async with system_factory() as system:
        load = LoadDriver(system.base_url, concurrency=4)
        await load.run(total // 3)
        async with memory_alarm():
            raised_at = time.monotonic()
            await load.run(total // 3, first=total // 3, rate=(total // 3) / alarm)
            await asyncio.sleep(max(0.0, alarm - (time.monotonic() - raised_at)))
            held = await fetchval(
                system.env, "SELECT count(*) FROM booking.outbox WHERE published_at IS NULL"
            )
            assert held > 0, "the alarm did not hold back a single event; it proves nothing"
        cleared_at = time.monotonic()
        await load.run(total - 2 * (total // 3), first=2 * (total // 3))
        during = load.record.between(raised_at, cleared_at)
        assert during, "no request was made during the alarm"
        assert all(a.status == 201 for a in during), {a.status for a in during}
        slowest = max(a.latency for a in during)
        assert slowest < 1.0, f"a booking took {slowest:.2f}s during the alarm"
        figures = await check(
            system, load.record, scenario="8. broker memory alarm", faults=1, started=started
        )
    print(f"slowest booking during the alarm: {slowest:.3f}s; events held back: {held}")
    report(figures)
