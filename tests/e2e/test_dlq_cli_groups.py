"""``bookingctl dlq groups``, ``replay --fingerprint`` and ``group-state`` as a real process."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_dlq_cli import bookingctl
from tests.support.amqp import queue_depth
from tests.support.dlq import cancelled, park
from tests.support.events import confirmed
from tests.support.infra import TestEnv

pytestmark = pytest.mark.e2e


async def test_the_cli_lists_failure_groups_and_replays_or_mutes_one_by_its_fingerprint(
    env: TestEnv,
) -> None:
    url = env.amqp_url()
    variables = {"AMQP_URL": url, "DATABASE_URL": env.database_url}
    await park(url, "email", [confirmed() for _ in range(2)])
    await park(url, "email", [cancelled()])  # another event type: another group

    code, out, err = await bookingctl(variables, "dlq", "groups", "--json")
    assert code == 0, err
    listed = json.loads(out)
    [exhausted] = [g for g in listed if g["count"] == 2]
    assert len(listed) == 2
    fingerprint = exhausted["fingerprint"]
    table = await bookingctl(variables, "dlq", "groups")
    dry = await bookingctl(
        variables, "dlq", "replay", "email", "--fingerprint", fingerprint, "--dry-run"
    )
    muted = await bookingctl(variables, "dlq", "group-state", fingerprint, "muted", "--hours", "2")
    unknown = await bookingctl(variables, "dlq", "group-state", "0123456789abcdef", "archived")
    replayed = await bookingctl(variables, "dlq", "replay", "email", "--fingerprint", fingerprint)
    history = await bookingctl(variables, "dlq", "history")

    assert fingerprint in table[1]
    assert "SMTP relay down" in table[1]
    assert dry[0] == 0, dry[2]
    assert "would replay 2, skipped 1" in dry[1]
    assert muted == (0, f"{fingerprint}: muted\n", "")
    assert unknown[0] == 2
    assert unknown[2].startswith("error: no failure group")
    assert replayed[0] == 0, replayed[2]
    assert await queue_depth(url, "email.dlq") == 1
    assert await queue_depth(url, "email.booking-events") == 2
    assert " mute " in history[1]
