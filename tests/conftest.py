from __future__ import annotations

import os
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest

from tests.support.infra import TestEnv, create_env, drop_env
from tests.support.processes import DEV_ENV

for _name, _value in DEV_ENV.items():
    os.environ.setdefault(_name, _value)


@pytest.fixture
async def env(request: pytest.FixtureRequest) -> AsyncIterator[TestEnv]:
    """A database and a RabbitMQ vhost of this test's own, dropped afterwards."""
    created = await create_env(request.node.name.split("[")[0][-20:])
    try:
        yield created
    finally:
        await drop_env(created)


@pytest.fixture
def logs(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A folder for process logs; their tails are printed when the test fails, so the
    failure explains itself."""
    yield tmp_path
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for log in sorted(tmp_path.glob("*.log")):
            print(f"----- {log.name} -----\n{log.read_text(errors='replace')[-5000:]}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keeps each phase's report on the test item, for ``logs`` to see whether it failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
