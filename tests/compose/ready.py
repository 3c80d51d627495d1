"""What every container suite does first: skip where no engine can run, else set up what is
missing (engine, compose plugin, stand-in images) and say what was done."""

from __future__ import annotations

import asyncio

import pytest

from tests.compose.standins.prepare import PrepareError, prepare, why_no_engine


async def engine_prepared(suite: str) -> None:
    reason = why_no_engine()
    if reason:
        pytest.skip(f"no container engine can run here: {reason}")
    try:
        print("\n" + await asyncio.to_thread(prepare))
    except PrepareError as exc:
        pytest.fail(f"{suite} could not be prepared: {exc}")
