"""What a publisher confirm means on the cluster: the broker confirms a message routed to a
quorum queue only once a majority of the queue's members have written it. With the leader's
two followers frozen, a publish waits unconfirmed; it is confirmed when they come back. The
outbox relay marks an event sent only on that confirm (shared/outbox/relay.py), so an event
marked sent is on at least two of the three nodes."""

from __future__ import annotations

import asyncio
import time

import aio_pika
import pytest

from shared.messaging.connection import close_quietly, connect
from shared.messaging.topology import consumer_topology, declare_all
from tests.cluster.cluster import NODES, ComposedCluster
from tests.support.infra import TestEnv

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]
QUEUE = consumer_topology("voucher").queue


async def test_a_publish_is_confirmed_only_once_a_majority_of_the_queues_nodes_has_it(
    cluster: ComposedCluster, cluster_env: TestEnv
) -> None:
    vhost = cluster_env.vhost
    admin = await connect(cluster.url(vhost), name="test", timeout=10)  # any node will do
    try:
        await declare_all(await admin.channel())
    finally:
        await close_quietly(admin)
    leader = (await cluster.replicas(vhost))[QUEUE].leader
    followers = [node for node in NODES if node != leader]
    async with await aio_pika.connect(cluster.url(vhost, nodes=(leader,)), timeout=10) as link:
        channel = await link.channel(publisher_confirms=True)

        async def publish(body: bytes) -> None:
            message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await channel.default_exchange.publish(message, QUEUE, timeout=None)

        sent = time.monotonic()
        await asyncio.wait_for(publish(b"with every node"), 10)
        print(f"confirmed with three nodes in {time.monotonic() - sent:.3f}s")
        for node in followers:
            await cluster.pause(node)
        try:
            waiting = asyncio.create_task(publish(b"with the leader alone"))
            await asyncio.sleep(8)
            assert not waiting.done(), "confirmed although only the leader has the message"
        finally:
            for node in followers:
                await cluster.unpause(node)
        thawed = time.monotonic()
        await asyncio.wait_for(waiting, 30)
        print(f"confirmed {time.monotonic() - thawed:.2f}s after the followers came back")
        queue = await channel.declare_queue(QUEUE, passive=True)
        assert queue.declaration_result.message_count == 2
