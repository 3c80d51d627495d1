"""The whole system on the cluster, as the README starts it: deploy/compose.yaml with
deploy/compose.cluster.yaml on top, built and started by the README's own command (every app
container, three RabbitMQ nodes, the replicas step), booked through, then the first node
killed: every service moves to the other two and the next booking is fulfilled too, each
guest mailed once.

The other cluster tests run the services as local processes against a broker-only cluster
shared by the session; this module sorts first, so it runs before that cluster exists and
the machine never runs six nodes at once.
"""

from __future__ import annotations

import os
import re
import shlex
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.cluster.cluster import NODES, ComposedCluster
from tests.cluster.conftest import SIZE_VARIABLE
from tests.compose.checks import fulfilment, guest, guest_booking, mails, recipients, wait_for
from tests.compose.commands import README
from tests.compose.ready import engine_prepared
from tests.compose.system import APP_SERVICES

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.timeout(1800)]
COMMAND = re.compile(
    r"docker compose -f deploy/compose\.yaml -f deploy/compose\.cluster\.yaml up [^`\n]+"
)
TAG = "cluster-system"


def readme_cluster_command() -> list[str]:
    found = COMMAND.search(README.read_text())
    assert found, "the README gives no command that starts the cluster file"
    return shlex.split(found.group(), comments=True)


@pytest.fixture
async def whole(tmp_path: Path) -> AsyncIterator[ComposedCluster]:
    if SIZE_VARIABLE not in os.environ:
        pytest.skip("the cluster suite runs with `make test-cluster` (a few minutes)")
    await engine_prepared("the cluster")
    system = ComposedCluster.create(tmp_path)
    try:
        command = readme_cluster_command()
        await system.run(*command, "--wait", "--wait-timeout", "900", timeout=1500)
        yield system
    finally:
        try:
            print(f"cluster system logs: {system.save_logs()}")
        finally:
            await system.remove()


async def _booked_and_fulfilled(client: httpx.AsyncClient, i: int, timeout: float) -> str:
    answer = await client.post("/bookings", json=guest_booking(TAG)(i))
    assert answer.status_code == 201, answer.text
    booking_id: str = answer.json()["id"]

    async def done() -> bool:
        return set((await fulfilment(client, booking_id)).values()) == {"done"}

    await wait_for(done, what=f"booking {i}: every fulfilment step done", timeout=timeout)
    return booking_id


async def test_the_readme_cluster_runs_the_whole_system_and_survives_losing_the_first_node(
    whole: ComposedCluster,
) -> None:
    expected = {"postgres": 1, "mailpit": 1, **dict.fromkeys(NODES, 1)}
    await whole.wait_healthy({**expected, **dict.fromkeys(APP_SERVICES, 1)}, timeout=180)
    async with httpx.AsyncClient(base_url=whole.base_url, timeout=10) as client:
        await _booked_and_fulfilled(client, 0, timeout=60)
        await whole.kill(NODES[0])
        # The services notice by heartbeat (5 s in the cluster's URLs), reconnect to another
        # node, and the queues the dead node led elect new leaders.
        await _booked_and_fulfilled(client, 1, timeout=180)
    sent = Counter(recipients(await mails(whole)))
    assert sent == {guest(TAG, 0): 1, guest(TAG, 1): 1}
