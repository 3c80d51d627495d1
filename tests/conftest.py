from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.infra import TestEnv, create_env, drop_env


@pytest.fixture
async def env(request: pytest.FixtureRequest) -> AsyncIterator[TestEnv]:
    """A database and a RabbitMQ vhost of this test's own, dropped afterwards."""
    created = await create_env(request.node.name.split("[")[0][-20:])
    try:
        yield created
    finally:
        await drop_env(created)
