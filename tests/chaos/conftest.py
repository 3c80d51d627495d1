"""Fixtures of the chaos suite: its size, the system launcher, and the figures it reports.

``CHAOS_SIZE=full`` (``make test-chaos``) runs every scenario at full size and writes the
figures to ``tests/chaos/results/latest.md``; the default, reduced size runs in ``make test``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.figures import Figures, results_markdown
from tests.chaos.system import System, launched
from tests.support.infra import TestEnv
from tests.support.size import Size

RESULTS = Path(__file__).parent / "results" / "latest.md"
_collected: list[Figures] = []


@pytest.fixture(scope="session")
def size() -> Size:
    return Size.from_env("CHAOS_SIZE")


Launcher = Callable[..., contextlib.AbstractAsyncContextManager[System]]


@pytest.fixture
def system_factory(env: TestEnv, logs: Path) -> Launcher:
    """``async with system_factory(**settings) as system``: the four services, started."""

    def factory(**kwargs: Any) -> contextlib.AbstractAsyncContextManager[System]:
        return launched(env, logs, **kwargs)

    return factory


@pytest.fixture
async def system(system_factory: Launcher) -> AsyncIterator[System]:
    async with system_factory() as running:
        yield running


@pytest.fixture
def report(size: Size) -> Callable[[Figures], None]:
    """Print a scenario's figures, keep them for the results file, and fail on violations."""

    def report(figures: Figures) -> None:
        print("\n" + figures.table())
        _collected.append(figures)
        assert not figures.violations, figures.table()
        assert figures.lost == 0

    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CHAOS_SIZE") != "full" or not _collected:
        return
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(results_markdown(_collected))
