"""A replay when the broker drops or goes silent part-way: it stops within its timeouts,
says so, and every message is still in the dead-letter queue, the target queue, or both."""

from __future__ import annotations

import asyncio
import time

from shared.deadletters.model import Filters
from shared.messaging.topology import consumer_topology
from tests.support.amqp import queue_depth
from tests.support.dlq import dlq_ops, message_ids, park
from tests.support.events import confirmed
from tests.support.infra import AMQP_HOST, AMQP_PORT, TestEnv
from tests.support.stack import at_least, fetchval, wait_until
from tests.support.tcp_proxy import TcpProxy

EMAIL = consumer_topology("email")


async def _replay_until_fault(
    env: TestEnv, proxy: TcpProxy, fault: str, already_moved: int
) -> tuple[object, float]:
    url = env.amqp_url()
    async with dlq_ops(
        env,
        amqp_url=env.amqp_url(port=proxy.port),
        connect_timeout=1.0,
        publish_timeout=1.0,
        batch_size=5,
    ) as ops:
        task = asyncio.create_task(
            ops.replay("email", Filters(select_all=True), actor="t", rate=50)
        )
        await wait_until(
            lambda: at_least(queue_depth(url, EMAIL.queue), already_moved + 10), what="progress"
        )
        await (proxy.cut() if fault == "cut" else proxy.blackhole())
        started = time.monotonic()
        summary = await asyncio.wait_for(task, 30)
        return summary, time.monotonic() - started


async def test_a_replay_cut_off_or_stalled_by_the_broker_stops_in_time_and_loses_nothing(
    env: TestEnv,
) -> None:
    n = 80
    url = env.amqp_url()
    ids = set(await park(url, "email", [confirmed() for _ in range(n)]))
    async with TcpProxy(AMQP_HOST, AMQP_PORT) as proxy:
        cut, cut_after = await _replay_until_fault(env, proxy, "cut", 0)
        await proxy.restore()
        moved = len(await message_ids(url, EMAIL.queue))
        stalled, stalled_after = await _replay_until_fault(env, proxy, "blackhole", moved)
        await proxy.restore()
    await asyncio.sleep(1.0)  # the broker notices the dead connections and requeues
    parked, replayed = (
        await message_ids(url, EMAIL.dead_letter_queue),
        await message_ids(url, EMAIL.queue),
    )
    statuses = await fetchval(env, "SELECT array_agg(status ORDER BY id) FROM ops.dlq_audit")
    for summary in (cut, stalled):
        assert summary.error, summary  # type: ignore[attr-defined]
        assert summary.replayed < n  # type: ignore[attr-defined]
    assert cut_after < 10
    assert stalled_after < 15, "a silent broker must not hang the replay"
    assert set(parked) | set(replayed) == ids, "a message is in neither queue"
    assert 0 < len(set(parked)) < n
    assert statuses == ["failed", "failed"]
