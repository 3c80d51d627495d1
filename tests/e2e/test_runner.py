"""`make run`'s runner: starts every service with prefixed logs, stops them all on Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from shared import priority, registry
from tests.support.infra import TestEnv
from tests.support.processes import ROOT, free_port, start, stop, wait_http
from tests.support.roles import drop_roles, role_prefix
from tests.support.stack import booking_body, effects, equals, wait_until


async def fetch_column(env: TestEnv, sql: str) -> list[str]:
    conn = await asyncpg.connect(env.database_url)
    try:
        return [row[0] for row in await conn.fetch(sql)]
    finally:
        await conn.close()


pytestmark = pytest.mark.e2e


async def test_the_runner_starts_all_services_with_prefixed_logs_and_ctrl_c_stops_them(
    env: TestEnv, service_env: dict[str, str], logs: Path
) -> None:
    port = free_port()
    # No SMTP_HOST: the runner starts its own mail catcher, on ports free for this test.
    runner_env = {k: v for k, v in service_env.items() if not k.startswith("SMTP_")}
    mail_dir = logs / "caught"
    prefix = role_prefix()  # the migration step's roles, this test's own
    runner = start(
        ["-m", "devrun.run", "--scale", "email=2"],
        {
            **runner_env,
            "SMTP_HOST": "",
            "PORT": str(port),
            "SCALE": "",
            "MAILCATCHER_SMTP_PORT": str(free_port()),
            "MAILCATCHER_HTTP_PORT": str(free_port()),
            "MAILCATCHER_DIR": str(mail_dir),
            "DB_ROLE_PREFIX": prefix,
            # As a developer's shell has it: the runner sets what the services need.
            "DEV_MODE": "false",
            "MIGRATE_ON_START": "false",
        },
        logs / "runner.log",
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/hotels")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            booking = (await client.post("/bookings", json=booking_body())).json()
        for service in ("email", "voucher", "notification"):
            await wait_until(
                lambda s=service: equals(effects(env, s, booking["id"]), 1), what=service
            )
        # Each service is connected as its own role, none as the superuser.
        users = await fetch_column(
            env,
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()",
        )
    finally:
        code = stop(runner, signal.SIGINT, timeout=30)
        await drop_roles(env.database_url, prefix)
    output = (logs / "runner.log").read_text()
    assert code == 0, output[-3000:]
    roles = {f"{prefix}{name}" for name in ("booking", *registry.NAMES)}
    assert set(users) == roles, users
    assert re.search(r"^migrate: schema booking: \d+ migrations applied", output, re.MULTILINE)
    for label in ("booking", "notification", "email-1", "email-2", "voucher"):
        assert re.search(rf"^{label} +\| ", output, re.MULTILINE), label
    for label in ("notification", "email-1", "email-2", "voucher"):
        assert re.search(rf"^{label} +\| .*stopped cleanly", output, re.MULTILINE), label
        # The consumers yield the CPU to the booking API (shared/priority.py); it does not.
        lowered = rf"^{label} +\| .*running at niceness {priority.BACKGROUND} \(its autogroup"
        assert re.search(lowered, output, re.MULTILINE), label
    assert not re.search(r"^booking +\| .*running at niceness", output, re.MULTILINE)


def test_the_runner_says_in_one_line_when_rabbitmq_is_unreachable() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devrun.run"],
        cwd=ROOT,
        env={"AMQP_URL": "amqp://guest:secret@127.0.0.1:1/", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: RabbitMQ is not reachable at 127.0.0.1:1")
    assert "secret" not in line


def test_the_runner_refuses_an_unknown_service_in_scale() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devrun.run", "--scale", "billing=2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: unknown service 'billing'")
