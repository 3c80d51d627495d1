"""``bookingctl`` refuses a filter it cannot record with one line and exit code 2 (bad usage),
before it connects to anything, as a real process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.processes import ROOT

REPLAY_ALL = ("dlq", "replay", "email", "--all")


@pytest.mark.parametrize(
    ("option", "value"),
    [("--limit", str(2**31)), ("--reason", ""), ("--event-type", "x" * 300)],
)
def test_a_filter_the_audit_table_cannot_take_is_bad_usage_in_one_line(
    option: str, value: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.bookingctl", *REPLAY_ALL, option, value],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        # Nothing listens here: a usage error must come before any connection.
        env={
            "AMQP_URL": "amqp://nobody:x@127.0.0.1:1/",
            "DATABASE_URL": "postgresql://x@127.0.0.1:1/x",
        },
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: ")
    assert "Traceback" not in done.stderr
