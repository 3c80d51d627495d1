"""The dead-letter console works for an operator, in a real headless Chromium (Debian's,
through Playwright): a booking whose guest address the SMTP server refuses (aiosmtpd, "550
no such user") is dead-lettered by the real email consumer; the operator signs in, finds the
group, inspects the message beside the booking's fulfilment, runs a dry run, and once the
address exists retries the group: the email arrives once, the group is gone, and the audit
log names the operator. Each step is a screenshot, at 1,280 px and at a phone's width, in
tests/artifacts/console/; with UPDATE_SCREENSHOTS=1, in docs/console/ (the README shows them)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.support.infra import AMQP_PASSWORD, AMQP_USER, MANAGEMENT_URL, TestEnv
from tests.support.processes import (
    NO_RATE_LIMITS,
    booking_process,
    free_port,
    start_service,
    stop,
)
from tests.support.screenshots import screenshot_folder
from tests.support.smtp import SmtpRecorder
from tests.support.stack import booking_body

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
SHOTS = screenshot_folder("console")
TOKEN = "console-e2e-admin-token-0123456789abcdef"
REFUSED = "nobody@example.com"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
MESSAGE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture
def smtp() -> Iterator[SmtpRecorder]:
    """A real SMTP server that refuses REFUSED at RCPT."""
    recorder = SmtpRecorder()
    recorder.port = free_port()
    recorder.refused_recipients.add(REFUSED)
    controller = Controller(recorder, hostname="127.0.0.1", port=recorder.port)
    controller.start()
    yield recorder
    controller.stop()


@pytest.fixture
def stack(env: TestEnv, logs: Path, smtp: SmtpRecorder) -> Iterator[str]:
    """The booking service (with the console) and the email consumer, as real processes."""
    common = {
        "DATABASE_URL": env.database_url,
        "AMQP_URL": env.amqp_url(),
        "LOG_LEVEL": "INFO",
        "HTTP_PORT": "0",
        "RETRY_BASE_DELAY": "0.05",
        "RETRY_MAX_DELAY": "0.2",
    }
    management = MANAGEMENT_URL.replace("://", f"://{AMQP_USER}:{AMQP_PASSWORD}@", 1)
    email = start_service(
        "email", {**common, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port)}, logs
    )
    try:
        with booking_process(
            env,
            logs,
            ADMIN_TOKEN=TOKEN,
            ADMIN_MANAGEMENT_URL=management,
            OUTBOX_SWEEP_INTERVAL="0.2",
            **NO_RATE_LIMITS,
        ) as base:
            yield base
    finally:
        stop(email)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {timeout}s")


def parked(base: str) -> int:
    answer = httpx.get(f"{base}/admin/dlq", headers={"Authorization": f"Bearer {TOKEN}"})
    return int(next(q["messages"] for q in answer.json() if q["service"] == "email"))


def email_step(base: str, booking_id: str) -> str:
    fulfilment = httpx.get(f"{base}/bookings/{booking_id}").json()["fulfilment"]
    return str(fulfilment["email"]["status"])


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / name, full_page=True)


def test_an_operator_finds_inspects_dry_runs_and_retries_a_refused_email_from_the_console(
    stack: str, smtp: SmtpRecorder, browser: Browser
) -> None:
    booking = httpx.post(f"{stack}/bookings", json=booking_body(guest_email=REFUSED)).json()
    wait_for(lambda: parked(stack) == 1, "dead-lettered confirmation email")
    wait_for(lambda: email_step(stack, booking["id"]) == "failed", "the email step failed")
    page = browser.new_page(viewport=DESKTOP)

    page.goto(f"{stack}/admin/console")  # no session: the sign-in page, nothing else
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Admin token").fill(TOKEN)
    page.get_by_label("Your name").fill("alice")
    shoot(page, "1-sign-in.png")
    page.get_by_label("Your name").press("Enter")  # the keyboard submits the form

    expect(page.get_by_role("heading", name="Failure groups")).to_be_visible()
    group = page.get_by_role("link", name="PermanentError")
    expect(group).to_contain_text("refused all recipients")
    expect(page.locator("#live")).to_contain_text("email")  # live state, polled
    # Only booking and email run: voucher's and notification's queues hold the event and
    # have no consumer, which the live state says in words (and in red).
    voucher = page.locator("#live").get_by_role("row", name="voucher")
    expect(voucher).to_contain_text("no consumer attached")
    shoot(page, "2-failure-groups.png")
    page.set_viewport_size(PHONE)
    shoot(page, "2-failure-groups-phone.png")
    page.set_viewport_size(DESKTOP)

    group.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("<email>")
    shoot(page, "3-group.png")
    page.get_by_role("link", name=MESSAGE_ID).click()  # its one message
    expect(page.get_by_role("heading", name="Body")).to_be_visible()
    expect(page.locator("pre.json")).to_contain_text(REFUSED)
    expect(page.get_by_role("heading", name="The booking's fulfilment")).to_be_visible()
    steps = page.get_by_role("table", name="Fulfilment steps")
    expect(steps.get_by_role("row", name="email")).to_contain_text("failed")
    expect(page.locator("main")).to_contain_text(booking["id"])
    expect(page.get_by_role("heading", name="Every parking")).to_be_visible()
    shoot(page, "4-message.png")

    page.get_by_role("link", name="Its failure group").click()
    page.get_by_role("button", name="Dry run").first.click()
    expect(page.locator("#result")).to_contain_text("Dry run: 1 message(s) of email.dlq")
    shoot(page, "5-dry-run.png")
    assert parked(stack) == 1
    assert smtp.envelopes == []

    smtp.refused_recipients.clear()  # the guest's address now exists
    page.get_by_role("button", name="Retry 1 message(s)").click()
    expect(page.locator("#result")).to_contain_text("Retried 1 message(s) from email.dlq")
    wait_for(lambda: len(smtp.envelopes) == 1, "email")
    shoot(page, "6-retried.png")

    page.get_by_role("link", name="Failure groups", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("No dead letters")
    shoot(page, "7-group-gone.png")

    page.get_by_role("link", name="Audit log").click()
    rows = page.locator("tbody tr")
    expect(rows.first).to_contain_text("console:alice@127.0.0.1")
    expect(rows.first).to_contain_text("replay")
    expect(rows.first).to_contain_text("retried 1")
    expect(rows.nth(1)).to_contain_text("(dry run)")
    shoot(page, "8-audit.png")
    page.set_viewport_size(PHONE)
    shoot(page, "8-audit-phone.png")

    time.sleep(1)  # a duplicate would arrive by now
    assert [e.rcpt_tos for e in smtp.envelopes] == [[REFUSED]]
    assert parked(stack) == 0
