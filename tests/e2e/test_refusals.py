"""Processes that must not start do not: one line on stderr, exit 1 (bookingctl: 2, bad
usage), for a placeholder or short secret outside DEV_MODE and for a schema that the
migration step has not migrated."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.infra import TestEnv
from tests.support.processes import ROOT

pytestmark = pytest.mark.e2e
EXAMPLE = dict(re.findall(r"^(\w+)=(.*)$", (ROOT / "deploy" / ".env.example").read_text(), re.M))
PRODUCTION = {"DEV_MODE": "false", "MIGRATE_ON_START": "false"}


def run(args: list[str], env: dict[str, str]) -> tuple[int, list[str]]:
    """Exit code and stderr lines of ``python args...``."""
    result = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **PRODUCTION, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stderr.strip().splitlines()


def test_the_booking_service_refuses_the_example_admin_token() -> None:
    code, lines = run(["-m", "services.booking"], {"ADMIN_TOKEN": EXAMPLE["ADMIN_TOKEN"]})
    assert code == 1
    [line] = lines
    assert line.startswith("error: booking cannot start: ADMIN_TOKEN is a placeholder")
    assert EXAMPLE["ADMIN_TOKEN"] not in line


def test_the_notification_service_refuses_its_default_webhook_secret() -> None:
    code, lines = run(["-m", "services.notification"], {})
    assert code == 1
    [line] = lines
    assert line.startswith(
        "error: notification cannot start: NOTIFICATION_WEBHOOK_SECRET is a placeholder"
    )


def test_a_consumer_refuses_an_example_password_in_its_amqp_url() -> None:
    password = EXAMPLE["RABBITMQ_EMAIL_PASSWORD"]
    code, lines = run(["-m", "services.email"], {"AMQP_URL": f"amqp://email:{password}@mq/hotel"})
    assert code == 1
    [line] = lines
    assert line.startswith("error: email cannot start: AMQP_URL is a placeholder")
    assert password not in line


def test_the_migration_step_and_bookingctl_refuse_example_passwords() -> None:
    roles = {key: value for key, value in EXAMPLE.items() if key.startswith("POSTGRES_")}
    code, lines = run(["-m", "shared.db.provision"], roles)
    assert code == 1
    [line] = lines
    assert line.startswith(
        "error: the migration step failed: POSTGRES_BOOKING_PASSWORD is a placeholder"
    )
    url = f"postgresql://postgres:{EXAMPLE['POSTGRES_PASSWORD']}@127.0.0.1/booking"
    code, lines = run(["-m", "services.bookingctl", "dlq", "list"], {"DATABASE_URL": url})
    assert code == 2
    assert lines == [
        "error: bad configuration: DATABASE_URL is a placeholder (from deploy/.env.example or "
        "a default): set a secret of your own (DEV_MODE=true allows them on a developer's "
        "machine)"
    ]


@pytest.mark.parametrize("service", ["booking", "email"])
def test_a_service_refuses_to_start_on_a_schema_the_migration_step_has_not_migrated(
    env: TestEnv, service: str, tmp_path: Path
) -> None:
    # DEV_MODE (the guest user), but no MIGRATE_ON_START: as under `make run`, without its step.
    code, lines = run(
        ["-m", f"services.{service}"],
        {"DEV_MODE": "true", "DATABASE_URL": env.database_url, "AMQP_URL": env.amqp_url(),
         "HTTP_PORT": "0", "PORT": "0"},
    )  # fmt: skip
    assert code == 1, lines
    assert re.fullmatch(
        rf"error: {service} cannot start: the {service} schema is not migrated \(0 of \d+ "
        rf"migrations applied; next: db/consumer_migrations/001_processed_events\.sql\): "
        r"run the migration step \(python -m shared\.db\.provision\) first, or set "
        r"MIGRATE_ON_START=true",
        lines[-1],
    ), lines
