"""Schemathesis against the booking service as a real process (real PostgreSQL and RabbitMQ):
every operation of the public and the admin API, generated from the OpenAPI document, in all
four phases (examples, coverage, fuzzing, then stateful sequences of linked operations) with
every check. No input may give a 500, an undocumented status, or a body that does not match
its documented schema. Settings: tests/e2e/schemathesis.toml.

Schemathesis runs as its command line (its full engine, all phases in one run): its pytest
plugin cannot collect with pytest 9 (it reads an attribute pytest no longer has)."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dlq import park
from tests.support.events import confirmed
from tests.support.infra import TestEnv
from tests.support.processes import (
    NO_RATE_LIMITS,
    booking_process,
)

pytestmark = pytest.mark.e2e
CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
TOKEN = secrets.token_urlsafe(32)
# The bound in time is max-examples in the settings; this limit for the whole run is far
# above what it takes, so that a stall fails the test instead of hanging it.
RUN_TIMEOUT = 240


@pytest.fixture
def api(env: TestEnv, logs: Path) -> Iterator[str]:
    """The booking service as a real uvicorn process with the admin API on, its dead-letter
    queues declared and holding a few messages for the admin operations to work on."""
    asyncio.run(_park_some(env.amqp_url()))
    variables = {
        "ADMIN_TOKEN": TOKEN,
        "LOG_LEVEL": "WARNING",
        # Thousands of bookings from one address: with the limits on, nearly every one would
        # be a 429 and the rest of the API would go untried (429 itself stays accepted).
        **NO_RATE_LIMITS,
    }
    with booking_process(env, logs, **variables) as base:
        yield base


async def _park_some(amqp_url: str) -> None:
    for service in ("email", "voucher"):
        await park(amqp_url, service, [confirmed() for _ in range(3)])


# The run itself is bounded by RUN_TIMEOUT; pytest's default 120 s cut it short on a loaded
# machine once the admin API had its failure-group operations.
@pytest.mark.timeout(RUN_TIMEOUT + 60)
def test_every_operation_and_linked_sequence_answers_generated_input_as_documented(
    api: str, tmp_path: Path
) -> None:
    command = [str(SCHEMATHESIS), "--config-file", str(CONFIG), "--no-color"]
    command += ["run", f"{api}/openapi.json", "--output-truncate", "false"]
    if "SCHEMATHESIS_EXAMPLES" in os.environ:
        command += ["--max-examples", os.environ["SCHEMATHESIS_EXAMPLES"]]
    if "SCHEMATHESIS_SEED" in os.environ:  # replays a run: its seed is in its report
        command += ["--seed", os.environ["SCHEMATHESIS_SEED"]]
    done = subprocess.run(
        command,
        cwd=tmp_path,  # where Hypothesis keeps its files: not in the work tree
        env={**os.environ, "ADMIN_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 0, done.stdout[-20_000:] + done.stderr[-5_000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅  {phase}" in done.stdout, done.stdout[-5_000:]
