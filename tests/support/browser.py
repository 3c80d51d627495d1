"""Driving Swagger UI (/docs) and other pages in Debian's Chromium through Playwright."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, sync_playwright

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


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, never one downloaded by `playwright install`; the test skips without
    it (fails when CI=true)."""
    if not Path(CHROMIUM).is_file():
        message = (
            f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install chromium, "
            "which `make services` does as root) or set CHROMIUM_PATH"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def operation(page: Page, tag: str, operation_id: str) -> Locator:
    """Expand one operation of the Swagger UI and press its "Try it out"."""
    block = page.locator(f"#operations-{tag}-{operation_id}")
    block.locator(".opblock-summary").click()
    block.locator("button.try-out__btn").click()
    return block


def execute(block: Locator, status: int) -> Locator:
    """Press Execute and wait for the answer with ``status``; its response row."""
    block.locator("button.execute").click()
    live = block.locator(".live-responses-table .response")
    live.locator(".response-col_status").filter(has_text=str(status)).wait_for(timeout=20_000)
    return live


def json_answer(block: Locator, status: int) -> dict[str, object]:
    live = execute(block, status)
    body = live.locator(".response-col_description pre").first.inner_text()
    parsed: dict[str, object] = json.loads(body)
    return parsed


def authorize(page: Page, scheme: str, value: str) -> None:
    """Enter ``value`` for ``scheme`` in the dialog of the page's Authorize button."""
    page.locator(".auth-wrapper button.authorize").click()
    form = page.locator(".auth-container").filter(has_text=scheme)
    form.locator("input").fill(value)
    form.locator("button.authorize").click()
    page.locator("button.btn-done").first.click()
