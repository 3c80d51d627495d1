"""The three RabbitMQ nodes of deploy/compose.cluster.yaml, run by compose as a project of
their own (the broker services only: the system under test runs as local processes, as in
the chaos suite), and what the cluster suite does to them: kill, stop and start a node, cut
one off the project's network and join it again. Each node publishes its AMQP port on a
free 127.0.0.1 port; the services list the three.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from tests.chaos.infra import QueueStats, queue_stats
from tests.compose.commands import ROOT
from tests.compose.system import ComposedSystem

FILES = ("-f", "deploy/compose.yaml", "-f", "deploy/compose.cluster.yaml")
NODES = ("rabbitmq", "rabbitmq-2", "rabbitmq-3")
REPLICAS = "rabbitmq-replicas"
PORTS = {"rabbitmq": "RABBITMQ_AMQP_PORT", "rabbitmq-2": "RABBITMQ_2_AMQP_PORT"}
PORTS["rabbitmq-3"] = "RABBITMQ_3_AMQP_PORT"


@dataclass(frozen=True)
class QueueReplicas:
    name: str
    type: str
    leader: str  # the node's short name (rabbitmq-2), "" when there is none
    members: tuple[str, ...]


def short(node: str) -> str:
    """rabbit@rabbitmq-2 -> rabbitmq-2"""
    return node.rpartition("@")[2]


@dataclass
class ComposedCluster(ComposedSystem):
    # The nodes killed, stopped or cut off, and how (what heal() undoes).
    out: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, workdir: Path) -> ComposedCluster:
        made = super().create(workdir)
        assert isinstance(made, ComposedCluster)
        return made

    # --- running compose, with the cluster file on top ---------------------------------
    async def compose(self, *args: str, timeout: float = 600) -> str:
        return await self.run("docker", "compose", *FILES, *args, timeout=timeout)

    def compose_sync(self, *args: str) -> str:
        return subprocess.run(
            ["docker", "compose", *FILES, *args],
            cwd=ROOT,
            env=self.environment(),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout

    async def start_cluster(self, timeout: float = 300) -> None:
        """The three nodes healthy, and the replicas step completed. (`up --wait` returns
        once that step runs: it has no health check to wait for.)"""
        await self.compose(
            *("up", "--detach", "--wait", "--wait-timeout", "300", *NODES, REPLICAS),
            timeout=600,
        )
        deadline = time.monotonic() + timeout
        while True:
            out = await self.compose("ps", "-a", "--format", "json", REPLICAS)
            [step] = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
            if step["State"] == "exited":
                assert step["ExitCode"] == 0, await self.compose("logs", REPLICAS)
                return
            assert time.monotonic() < deadline, f"{REPLICAS} still {step['State']}"
            await asyncio.sleep(1)

    async def remove(self) -> None:
        await self.compose("down", "--volumes", "--remove-orphans", "--timeout", "5", timeout=300)

    # --- where the nodes are -------------------------------------------------------------
    @property
    def live(self) -> list[str]:
        return [node for node in NODES if node not in self.out]

    def url(self, vhost: str, nodes: tuple[str, ...] = NODES, heartbeat: int = 5) -> str:
        """The nodes as the admin user (every node when not told): what the services get."""
        password = self.values["RABBITMQ_ADMIN_PASSWORD"]
        hosts = ",".join(f"127.0.0.1:{self.port(PORTS[node])}" for node in nodes)
        return f"amqp://admin:{password}@{hosts}/{quote(vhost, safe='')}?heartbeat={heartbeat}"

    def ctl_command(self, node: str | None = None, tool: str = "rabbitmqctl") -> list[str]:
        """``tool`` (rabbitmqctl, rabbitmq-queues) on ``node`` (a running one by default), as a
        command line of its own."""
        env_file = str(self.workdir / "compose.env")
        return [
            *("docker", "compose", "--project-name", self.project, "--env-file", env_file),
            *(word if word.startswith("-") else str(ROOT / word) for word in FILES),
            *("exec", "-T", node or self.live[0], tool),
        ]

    async def ctl(self, *args: str, node: str | None = None, timeout: float = 120) -> str:
        return await self.run(*self.ctl_command(node), *args, timeout=timeout)

    # --- a test's virtual host ------------------------------------------------------------
    async def add_vhost(self, vhost: str) -> None:
        await self.ctl("add_vhost", vhost)
        await self.ctl("set_permissions", "-p", vhost, "admin", ".*", ".*", ".*")

    async def delete_vhost(self, vhost: str) -> None:
        await self.ctl("delete_vhost", vhost)

    async def stats(self, vhost: str) -> dict[str, QueueStats]:
        """The broker's own queue figures for ``vhost``, from a running node."""
        return await queue_stats(vhost, self.ctl_command())

    async def replicas(self, vhost: str) -> dict[str, QueueReplicas]:
        # A leader on a node that has just gone cannot answer: give up on it after 15 s
        # rather than wait as long as the CLI would.
        out = await self.ctl(
            *("list_queues", "-q", "--timeout", "15", "--formatter", "json", "-p", vhost),
            *("name", "type", "leader", "members"),
        )
        return {
            row["name"]: QueueReplicas(
                row["name"],
                str(row["type"]),
                short(str(row.get("leader") or "")),
                tuple(sorted(short(str(m)) for m in row.get("members") or ())),
            )
            for row in json.loads(out[out.index("[") :])
        }

    # --- faults -----------------------------------------------------------------------------
    async def container(self, node: str) -> str:
        [found] = [c for c in await self.containers(node)]
        return found.id

    async def kill(self, node: str) -> None:
        """SIGKILL: the node dies without a word to its clients or peers."""
        self.out[node] = "killed"
        await self.compose("kill", node)

    async def stop(self, node: str) -> None:
        """A clean shutdown, as a rolling upgrade does it."""
        self.out[node] = "stopped"
        await self.compose("stop", "--timeout", "60", node, timeout=120)

    async def start(self, node: str, timeout: float = 180) -> float:
        """Start ``node`` again and wait until the cluster counts three running nodes; the
        seconds that took."""
        started = time.monotonic()
        await self.compose("start", node)
        await self.await_nodes(len(NODES), timeout, started)
        self.out.pop(node, None)
        return time.monotonic() - started

    async def await_nodes(self, count: int, timeout: float, started: float) -> None:
        while True:
            try:
                status = json.loads(await self._cluster_status())
                if len(status.get("running_nodes", ())) >= count:
                    return
            except (AssertionError, ValueError):
                pass  # the node is still booting: its CLI has no one to talk to yet
            if time.monotonic() - started > timeout:
                raise AssertionError(f"the cluster has not {count} running nodes after {timeout}s")
            await asyncio.sleep(1)

    async def _cluster_status(self) -> str:
        out = await self.ctl("cluster_status", "--formatter", "json", timeout=30)
        return out[out.index("{") :]

    async def pause(self, node: str) -> None:
        """Freeze every process of ``node`` (cgroup freezer): silent, yet not gone, for as
        long as its peers' net_ticktime lets them wait."""
        self.out[node] = "paused"
        await self.compose("pause", node)

    async def unpause(self, node: str) -> None:
        await self.compose("unpause", node)
        self.out.pop(node, None)

    @property
    def network(self) -> str:
        return f"{self.project}_default"

    async def disconnect(self, node: str) -> None:
        """Cut ``node`` off the project's network: from its peers and from its clients
        (its published port is on that network too)."""
        self.out[node] = "cut off"
        await self.run("docker", "network", "disconnect", self.network, await self.container(node))

    async def reconnect(self, node: str, timeout: float = 240) -> float:
        """Join ``node`` to the network again under its name; the seconds until the cluster
        counts three running nodes."""
        started = time.monotonic()
        container = await self.container(node)
        await self.run("docker", "network", "connect", "--alias", node, self.network, container)
        await self.await_nodes(len(NODES), timeout, started)
        self.out.pop(node, None)
        return time.monotonic() - started

    async def heal(self) -> None:
        """Bring back every node a test left out (a failed test must not fail the next)."""
        for node, how in list(self.out.items()):
            if how == "cut off":
                await self.reconnect(node)
            elif how == "paused":
                await self.unpause(node)
            else:
                await self.start(node)

    async def quorum_critical(self, node: str) -> bool:
        """Whether stopping ``node`` now would leave some quorum queue without a majority
        (RabbitMQ's own check before a node is taken down for an upgrade)."""
        command = self.ctl_command(node, "rabbitmq-queues")
        try:
            await self.run(*command, "check_if_node_is_quorum_critical", timeout=60)
        except AssertionError:
            return True
        return False
