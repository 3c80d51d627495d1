from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.support.infra import TestEnv
from tests.support.processes import NO_RATE_LIMITS, free_port, start, stop, wait_port


@pytest.fixture
def mail(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A real local SMTP server (the project's mail catcher) on a free port: (port, mail dir)."""
    port, folder = free_port(), tmp_path / "mail"
    catcher = start(
        ["-m", "devrun.mailcatcher"],
        {
            "MAILCATCHER_SMTP_PORT": str(port),
            "MAILCATCHER_HTTP_PORT": str(free_port()),
            "MAILCATCHER_DIR": str(folder),
        },
        tmp_path / "mailcatcher.log",
    )
    wait_port(port)
    yield port, folder
    stop(catcher)


@pytest.fixture
def service_env(env: TestEnv, mail: tuple[int, Path]) -> dict[str, str]:
    """Environment variables pointing a real process at this test's database, vhost and
    SMTP server."""
    return {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(mail[0]),
        "DATABASE_URL": env.database_url,
        "AMQP_URL": env.amqp_url(),
        "RETRY_BASE_DELAY": "0.05",
        "RETRY_MAX_DELAY": "0.2",
        "OUTBOX_SWEEP_INTERVAL": "0.2",
        "LOG_LEVEL": "INFO",
        # Ops HTTP servers on free ports: tests (and other runs) share this machine.
        "HTTP_PORT": "0",
        # Hundreds of bookings from one address and one guest email.
        **NO_RATE_LIMITS,
    }


CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# No sandbox (root in a container), and nothing that phones home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        message = (
            f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install chromium, "
            "which `make services` does as root) or set CHROMIUM_PATH"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        # Debian's Chromium, never one downloaded by `playwright install`.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
