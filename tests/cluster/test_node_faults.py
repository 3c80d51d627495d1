"""The cluster under continuous booking load, broken one node at a time: the node that leads
the queues killed, every node stopped and started in turn (a rolling upgrade), the leading
node cut off the network past partition detection and joined again. Each run ends with the
chaos suite's invariants (tests/chaos/invariants.py): every booking's effects exactly once or
dead-lettered with a reason, nothing lost, every queue drained.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest

from shared.messaging.topology import CONSUMERS
from tests.chaos.invariants import check
from tests.chaos.system import CONSUMER_SERVICES
from tests.cluster.cluster import NODES
from tests.cluster.conftest import Launcher
from tests.cluster.figures import ClusterFigures, client_view, effects_longest
from tests.cluster.system import ClusterSystem
from tests.support.load import LoadDriver
from tests.support.size import Size
from tests.support.stack import effects

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]
WORK_QUEUES = [names.queue for names in CONSUMERS.values()]
RATE = 6.0  # bookings per second: steady on two cores next to three brokers


def _cluster(system: object) -> ClusterSystem:
    assert isinstance(system, ClusterSystem)
    return system


async def replicated_on_every_node(system: ClusterSystem) -> None:
    """Every queue of the run is a quorum queue with a member on each node."""
    replicas = await system.broker.replicas(system.env.vhost)
    assert len(replicas) >= len(CONSUMERS) * 10  # work, 8 retry levels, dead letters each
    wrong = {
        q.name: (q.type, q.members)
        for q in replicas.values()
        if q.type != "quorum" or q.members != NODES
    }
    assert not wrong, f"not quorum queues on {NODES}: {wrong}"


async def leaders(system: ClusterSystem) -> dict[str, str]:
    replicas = await system.broker.replicas(system.env.vhost)
    return {queue: replicas[queue].leader for queue in WORK_QUEUES}


async def leading_node(system: ClusterSystem) -> str:
    """The node that leads the most work queues."""
    return Counter((await leaders(system)).values()).most_common(1)[0][0]


async def leaders_elsewhere(system: ClusterSystem, gone: str, since: float) -> float:
    """Seconds from ``since`` until every work queue has a leader on a running node."""
    while True:
        try:
            now = await leaders(system)
        except (AssertionError, ValueError):  # the CLI timed out, or said why not: again
            now = {}
        if now and all(leader and leader != gone for leader in now.values()):
            return time.monotonic() - since
        if time.monotonic() - since > 120:
            raise AssertionError(f"work queues still led from {gone}: {now}")
        await asyncio.sleep(0.5)


async def probe(system: ClusterSystem, load: LoadDriver, index: int, since: float) -> float:
    """Book one stay now; seconds from ``since`` until all its effects exist."""
    record = await load.run(1, first=index)
    booking = record.accepted[index]
    while True:
        counts = [await effects(system.env, name, booking) for name in CONSUMER_SERVICES]
        if all(counts):
            return time.monotonic() - since
        if time.monotonic() - since > 180:
            raise AssertionError(f"booking {booking} has effects {counts} after 180s")
        await asyncio.sleep(0.25)


async def fault(
    system: ClusterSystem,
    load: LoadDriver,
    index: int,
    node: str,
    inflict: Callable[[str], Awaitable[None]],
    figures: ClusterFigures,
) -> None:
    """Inflict a fault on ``node`` and measure the recovery from the moment it is done (a
    clean stop takes seconds itself): new leaders, a booking's effects."""
    await inflict(node)
    since = time.monotonic()
    moved, recovered = await asyncio.gather(
        leaders_elsewhere(system, node, since), probe(system, load, index, since)
    )
    figures.leader_moved.append(moved)
    figures.recovered.append(recovered)
    print(f"{node}: new leaders after {moved:.1f}s, a booking's effects after {recovered:.1f}s")


async def finish(
    system: ClusterSystem,
    load: LoadDriver,
    driving: asyncio.Task[object],
    figures: ClusterFigures,
    *,
    scenario: str,
    faults: int,
    started: float,
) -> None:
    await driving
    figures.figures = await check(
        system,
        load.record,
        scenario=scenario,
        faults=faults,
        started=started,
        drain_timeout=240,
    )
    figures.api_longest, figures.api_failed, figures.api_statuses = client_view(load.record)
    figures.effects_longest = await effects_longest(system)
    await replicated_on_every_node(system)


async def test_killing_the_node_that_leads_the_queues_loses_no_booking(
    system_factory: Launcher, size: Size, report: Callable[[ClusterFigures], None]
) -> None:
    started = time.monotonic()
    seconds = size.pick(40, 90)
    total = int(RATE * seconds)
    async with system_factory() as running:
        system = _cluster(running)
        await replicated_on_every_node(system)
        load = LoadDriver(system.base_url, concurrency=6)
        driving = asyncio.create_task(load.run(total, rate=RATE))
        await asyncio.sleep(seconds / 4)
        victim = await leading_node(system)
        figures = ClusterFigures()
        killed_at = time.monotonic()
        await fault(system, load, total, victim, system.broker.kill, figures)
        await asyncio.sleep(max(0.0, seconds / 3 - (time.monotonic() - killed_at)))
        print(f"{victim} back in {await system.broker.start(victim):.1f}s")
        await finish(
            system,
            load,
            driving,
            figures,
            scenario=f"A. leader node killed ({victim})",
            faults=1,
            started=started,
        )
    report(figures)


async def test_a_rolling_restart_of_every_node_under_load_loses_no_booking(
    system_factory: Launcher, size: Size, report: Callable[[ClusterFigures], None]
) -> None:
    started = time.monotonic()
    hold = size.pick(5.0, 15.0)  # each node stays down this long
    total = int(RATE * len(NODES) * (hold + 40))
    async with system_factory() as running:
        system = _cluster(running)
        load = LoadDriver(system.base_url, concurrency=6)
        driving = asyncio.create_task(load.run(total, rate=RATE))
        figures = ClusterFigures()
        for n, node in enumerate(NODES):
            # As an operator upgrading the cluster: a node goes down only once no quorum
            # queue depends on it (the one restarted before has caught up).
            deadline = time.monotonic() + 120
            while await system.broker.quorum_critical(node):
                assert time.monotonic() < deadline, f"{node} stayed quorum-critical"
                await asyncio.sleep(1)
            await fault(system, load, total + n, node, system.broker.stop, figures)
            await asyncio.sleep(hold)
            print(f"{node} back in {await system.broker.start(node):.1f}s")
        await finish(
            system,
            load,
            driving,
            figures,
            scenario="B. rolling restart, node by node",
            faults=len(NODES),
            started=started,
        )
    report(figures)


async def test_a_node_cut_off_past_partition_detection_then_healed_loses_no_booking(
    system_factory: Launcher, size: Size, report: Callable[[ClusterFigures], None]
) -> None:
    started = time.monotonic()
    # The nodes' net_ticktime is 60 s: a peer silent for 45-75 s is declared down, and the
    # lone node, a minority, pauses (cluster_partition_handling = pause_minority).
    cut_for = size.pick(80.0, 100.0)
    total = int(RATE * (cut_for + 60))
    async with system_factory() as running:
        system = _cluster(running)
        load = LoadDriver(system.base_url, concurrency=6)
        driving = asyncio.create_task(load.run(total, rate=RATE))
        await asyncio.sleep(10)
        victim = await leading_node(system)
        figures = ClusterFigures()
        cut_at = time.monotonic()
        await fault(system, load, total, victim, system.broker.disconnect, figures)
        await asyncio.sleep(max(0.0, cut_for - (time.monotonic() - cut_at)))
        print(f"{victim} rejoined {await system.broker.reconnect(victim):.1f}s after healing")
        await finish(
            system,
            load,
            driving,
            figures,
            scenario=f"C. {victim} cut off {cut_for:.0f} s, then healed",
            faults=1,
            started=started,
        )
    report(figures)
