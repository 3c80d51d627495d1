"""Fixtures of the cluster suite: the three-node cluster (one per session: forming it is the
slow part), a virtual host of each test's own on it, the system launcher, and the figures.

The suite runs with ``make test-cluster`` (CLUSTER_SIZE=full; CLUSTER_SIZE=reduced for a
shorter run), never inside ``make test``: the cluster alone takes a minute to form on two
cores. Without CLUSTER_SIZE every test is skipped, saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.system import System, launched
from tests.cluster.cluster import ComposedCluster
from tests.cluster.figures import ClusterFigures, results_markdown
from tests.cluster.system import ClusterSystem
from tests.compose.ready import engine_prepared
from tests.support.infra import TestEnv
from tests.support.size import Size

SIZE_VARIABLE = "CLUSTER_SIZE"
RESULTS = Path(__file__).parent / "results" / "latest.md"
_collected: list[ClusterFigures] = []

Launcher = Callable[..., contextlib.AbstractAsyncContextManager[System]]


@pytest.fixture(scope="session")
def size() -> Size:
    return Size.from_env(SIZE_VARIABLE)


@pytest.fixture(scope="session")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ComposedCluster]:
    """The three nodes of deploy/compose.cluster.yaml, healthy, every queue replicated;
    always removed with their volumes."""
    if SIZE_VARIABLE not in os.environ:
        pytest.skip("the cluster suite runs with `make test-cluster` (a few minutes)")
    await engine_prepared("the cluster")
    composed = ComposedCluster.create(tmp_path_factory.mktemp("cluster"))
    try:
        await composed.start_cluster()
        yield composed
    finally:
        try:
            print(f"cluster logs: {await asyncio.to_thread(composed.save_logs)}")
        finally:
            await composed.remove()


@pytest.fixture
async def cluster_env(cluster: ComposedCluster, env: TestEnv) -> AsyncIterator[TestEnv]:
    """The test's database, and its vhost on the cluster (same name as on the machine's
    broker, which the test does not use)."""
    await cluster.add_vhost(env.vhost)
    try:
        yield env
    finally:
        await cluster.heal()  # a node a failed test left down
        await cluster.delete_vhost(env.vhost)


@pytest.fixture
def system_factory(cluster: ComposedCluster, cluster_env: TestEnv, logs: Path) -> Launcher:
    """``async with system_factory(**settings) as system``: the four services on the three
    nodes, started."""

    def factory(**kwargs: Any) -> contextlib.AbstractAsyncContextManager[System]:
        url = cluster.url(cluster_env.vhost)
        kind = partial(ClusterSystem, cluster=cluster)
        return launched(cluster_env, logs, broker_url=url, kind=kind, **kwargs)

    return factory


@pytest.fixture
def report() -> Callable[[ClusterFigures], None]:
    """Print a scenario's figures, keep them for the results file, fail on violations."""

    def report(figures: ClusterFigures) -> None:
        print("\n" + figures.table())
        _collected.append(figures)
        assert not figures.figures.violations, figures.table()
        assert figures.figures.lost == 0

    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get(SIZE_VARIABLE) != "full" or not _collected:
        return
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(results_markdown(_collected))
