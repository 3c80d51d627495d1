"""``bookingctl`` as a real process: killed with SIGKILL in the middle of a replay it loses
nothing, and its errors are one line with an exit code."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shared.messaging.topology import consumer_topology
from tests.support.amqp import queue_depth
from tests.support.dlq import message_ids, park
from tests.support.events import confirmed
from tests.support.infra import TestEnv
from tests.support.processes import ROOT, free_port, start
from tests.support.smtp import smtp_server
from tests.support.stack import at_least, effects, equals, fetchval, running_consumer, wait_until

pytestmark = pytest.mark.e2e
EMAIL = consumer_topology("email")
# The console script installed with the project (pip install -e .).
BOOKINGCTL = str(Path(sys.executable).parent / "bookingctl")


def _env(env: TestEnv, **extra: str) -> dict[str, str]:
    return {"AMQP_URL": env.amqp_url(), "DATABASE_URL": env.database_url, **extra}


async def bookingctl(
    variables: dict[str, str], *args: str, stdin: str = ""
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        BOOKINGCTL,
        *args,
        cwd=ROOT,
        env={**os.environ, **variables},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_killing_a_replay_mid_run_loses_nothing_and_a_second_replay_finishes(
    env: TestEnv, logs: Path
) -> None:
    n = 20
    url = env.amqp_url()
    ids = await park(url, "email", [confirmed() for _ in range(n)])
    replay = start(
        [BOOKINGCTL, "dlq", "replay", "email", "--all", "--rate", "20"], _env(env), logs / "ctl.log"
    )
    try:
        await wait_until(lambda: at_least(queue_depth(url, EMAIL.queue), 6), what="some replayed")
        replay.send_signal(signal.SIGKILL)
        assert replay.wait(10) == -signal.SIGKILL
    finally:
        if replay.poll() is None:
            replay.kill()
    await asyncio.sleep(0.5)  # the broker notices the dead connection and requeues
    parked, moved = (
        await message_ids(url, EMAIL.dead_letter_queue),
        await message_ids(url, EMAIL.queue),
    )
    assert set(parked) | set(moved) == set(ids), "a message is in neither queue"
    assert 0 < len(moved) < n
    # Duplicates (in both queues) are at most the batches in flight: 2 of 2 at 20/s.
    assert len(parked) + len(moved) - n <= 4, "more duplicates than the batches in hand"
    killed_run = await fetchval(env, "SELECT status FROM ops.dlq_audit ORDER BY id LIMIT 1")
    assert killed_run == "running"  # visible as unfinished

    async with smtp_server() as smtp, running_consumer("email", env, smtp_port=smtp.port):
        code, out, err = await bookingctl(_env(env), "dlq", "replay", "email", "--all")
        await wait_until(lambda: equals(effects(env, "email"), n), what="every email", timeout=60)
        await asyncio.sleep(0.5)
    assert code == 0, err
    assert f"email.dlq: replayed {len(parked)}, skipped 0, failed 0" in out
    assert len(smtp.envelopes) == n  # each guest once, duplicates absorbed
    assert await queue_depth(url, EMAIL.dead_letter_queue) == 0
    code, out, _ = await bookingctl(_env(env), "dlq", "history")
    assert code == 0
    completed, killed = out.splitlines()  # newest first
    assert "completed: replayed" in completed
    assert "running: unfinished" in killed


async def test_the_cli_answers_with_one_line_and_an_exit_code(env: TestEnv) -> None:
    [parked] = await park(env.amqp_url(), "voucher", [confirmed()])
    variables = _env(env)
    nowhere = _env(env, AMQP_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}/")

    unknown = await bookingctl(variables, "dlq", "show", "parcel")
    no_broker = await bookingctl(nowhere, "dlq", "list")
    no_selection = await bookingctl(variables, "dlq", "replay", "voucher")
    bad_duration = await bookingctl(variables, "dlq", "replay", "voucher", "--older-than", "soon")
    declined = await bookingctl(variables, "dlq", "purge", "voucher", "--all", stdin="n\n")
    listed = await bookingctl(variables, "dlq", "list")
    shown = await bookingctl(variables, "dlq", "show", "voucher.dlq", "--json")

    for code, _, err in (unknown, no_selection, bad_duration):
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith("error: ")
    assert no_broker[0] == 1
    assert no_broker[2].startswith("error: cannot connect to amqp://guest:***@127.0.0.1")
    assert len(no_broker[2].strip().splitlines()) == 1
    assert "Traceback" not in no_broker[2]
    assert declined[0] == 1
    assert "purge declined" in declined[2]
    assert await message_ids(env.amqp_url(), "voucher.dlq") == [parked]
    assert listed[0] == 0
    assert "voucher.dlq" in listed[1]
    [row] = [line.split() for line in listed[1].splitlines() if line.startswith("voucher.dlq")]
    assert row[1] == "1"
    assert shown[0] == 0
    [message] = json.loads(shown[1])
    assert message["message_id"] == parked
    assert message["reason"] == "retries-exhausted"
