"""Fixtures of the compose suite: its size, and the composed system (one per module: building
and starting it is the expensive part).

``COMPOSE_SIZE=full`` (``make test-compose``) runs every scenario at full size; the default,
reduced size runs in ``make test``. The engine, the compose plugin and the images are made
ready first (tests/compose/standins/prepare.py, idempotent); the suite skips only where no
engine can run at all, and says why.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from shared import registry
from tests.compose.ready import engine_prepared
from tests.compose.system import ComposedSystem
from tests.support.size import Size

SERVICES_LOGGED = ("booking", *registry.NAMES, "rabbitmq", "mailpit")


@pytest.fixture(scope="session")
def size() -> Size:
    return Size.from_env("COMPOSE_SIZE")


@pytest.fixture
def full_only(size: Size) -> None:
    if not size.full:
        pytest.skip("full run only (make test-compose)")


@pytest.fixture(scope="module")
async def composed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ComposedSystem]:
    """deploy/compose.yaml built and started by the README's command, every health check
    passed; always taken down with its volumes."""
    await engine_prepared("the compose tests")
    system = ComposedSystem.create(tmp_path_factory.mktemp("compose"))
    try:
        await system.up()
        yield system
    finally:
        try:
            logs = await asyncio.to_thread(system.save_logs)
            print(f"compose logs: {logs}")
        finally:
            await system.down()


@pytest.fixture(autouse=True)
def logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """When a test fails, the containers' states and their logs' tails, so it explains itself."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is None or not report.failed or "composed" not in request.fixturenames:
        return
    system: ComposedSystem = request.getfixturevalue("composed")
    print(system.compose_sync("ps", "-a"))
    for service in SERVICES_LOGGED:
        tail = system.compose_sync("logs", "--no-color", "--tail", "40", service)
        print(f"----- {service} -----\n{tail}")
