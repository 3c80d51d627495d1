"""The system under test on the cluster: the chaos suite's four processes
(tests/chaos/system.py), each given the three nodes in its AMQP_URL, seen through whichever
node still runs (the invariants read the queues and dead letters through it)."""

from __future__ import annotations

from dataclasses import dataclass

from tests.chaos.infra import QueueStats
from tests.chaos.system import System
from tests.cluster.cluster import ComposedCluster


@dataclass
class ClusterSystem(System):
    cluster: ComposedCluster | None = None

    @property
    def broker(self) -> ComposedCluster:
        assert self.cluster is not None, "a ClusterSystem is built with its cluster"
        return self.cluster

    @property
    def amqp_url(self) -> str:
        """One running node, as admin: what the test looks with."""
        return self.broker.url(self.env.vhost, nodes=(self.broker.live[0],))

    async def queue_stats(self) -> dict[str, QueueStats]:
        return await self.broker.stats(self.env.vhost)
