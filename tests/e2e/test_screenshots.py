"""What a person sees, in Debian's Chromium, with every service a real process: the docs UI
journey (the example as shown books; a refused request is a problem; the voucher is a
download), the mail catcher's list with a long address beside the subject, the
confirmation's HTML view, and the voucher PDF it carries.

The screenshots go to tests/artifacts/screenshots/; with UPDATE_SCREENSHOTS=1, to
docs/screenshots/, the ones the README shows (commit them)."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page

# The docs UI test's Swagger UI helpers (Try it out, Execute, Authorize).
from tests.e2e.test_docs_ui import authorize, operation
from tests.e2e.test_docs_ui import execute as json_answer
from tests.support.infra import TestEnv
from tests.support.processes import (
    NO_RATE_LIMITS,
    free_port,
    start,
    start_service,
    stop,
    wait_http,
    wait_port,
)
from tests.support.screenshots import screenshot_folder

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
SHOTS = screenshot_folder("screenshots")
LONG_ADDRESS = "reservations-department-of-the-grand-hotel-aurora-lisbon@example.com"


@dataclass(frozen=True)
class System:
    api: str  # the booking API's base URL
    mailbox: str  # the mail catcher's page
    smtp_port: int  # the mail catcher's SMTP port


@pytest.fixture
def system(env: TestEnv, logs: Path, tmp_path: Path) -> Iterator[System]:
    """The booking service, the voucher and email consumers and the mail catcher."""
    smtp_port, web_port, api_port = free_port(), free_port(), free_port()
    catcher = start(
        ["-m", "devrun.mailcatcher"],
        {
            "MAILCATCHER_SMTP_PORT": str(smtp_port),
            "MAILCATCHER_HTTP_PORT": str(web_port),
            "MAILCATCHER_DIR": str(tmp_path / "mail"),
        },
        logs / "mailcatcher.log",
    )
    common = {
        "DATABASE_URL": env.database_url,
        "AMQP_URL": env.amqp_url(),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "HTTP_PORT": "0",
        **NO_RATE_LIMITS,
    }
    processes = [catcher]
    try:
        wait_port(smtp_port)
        processes.append(start_service("booking", {**common, "PORT": str(api_port)}, logs))
        processes += [start_service(name, common, logs) for name in ("voucher", "email")]
        api = f"http://127.0.0.1:{api_port}"
        wait_http(f"{api}/hotels", timeout=60)
        yield System(api, f"http://127.0.0.1:{web_port}", smtp_port)
    finally:
        for process in reversed(processes):
            stop(process)


def shoot(target: Page | Locator, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    target.screenshot(path=SHOTS / name)


def shoot_between(page: Page, top: Locator, bottom: Locator, name: str) -> None:
    """The page from ``top``'s upper edge down to ``bottom``'s lower one."""
    top.evaluate("element => element.scrollIntoView()")
    first, last = top.bounding_box(), bottom.bounding_box()
    assert first is not None
    assert last is not None
    height = last["y"] + last["height"] - first["y"] + 8
    clip = {"x": first["x"], "y": first["y"], "width": first["width"], "height": height}
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / name, clip=clip)  # type: ignore[arg-type]


def _voucher_issued(api: str, booking_id: str, token: str) -> None:
    """Waits (synchronously: Playwright's sync API runs a loop of its own here)."""
    with httpx.Client(base_url=api, headers={"X-Booking-Token": token}) as client:
        for _ in range(300):
            if client.get(f"/bookings/{booking_id}/voucher").status_code == 200:
                return
            time.sleep(0.1)
    raise AssertionError("the voucher was not issued within 30 s")


def test_the_docs_journey_the_mail_catcher_and_the_voucher_as_a_person_sees_them(
    system: System, browser: Browser
) -> None:
    api, mailbox = system.api, system.mailbox
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.goto(f"{api}/docs")

    create = operation(page, "create_booking_bookings_post")
    shoot_between(page, create, create.locator("button.execute"), "docs-1-try-it-out.png")
    booking = json_answer(create, 201)
    shoot(create.locator(".live-responses-table"), "docs-2-booked.png")
    booking_id, token = str(booking["id"]), str(booking["management_token"])

    body = create.locator("textarea.body-param__text")
    body.fill(body.input_value().replace('"check_out"', '"check_out_typo"'))
    problem = json_answer(create, 422)
    assert problem["type"] == "tag:hotel-booking.example,2026:problem:invalid-request"
    shoot(create.locator(".live-responses-table"), "docs-3-problem.png")

    _voucher_issued(api, booking_id, token)
    authorize(page, "BookingToken", token)
    voucher = operation(page, "voucher_bookings__booking_id__voucher_get")
    voucher.locator("input[placeholder='booking_id']").fill(booking_id)
    voucher.locator("button.execute").click()
    live = voucher.locator(".live-responses-table .response")
    download = live.locator("a", has_text="Download file")
    download.wait_for()
    assert "Unrecognized response type" not in live.inner_text()
    shoot_between(page, voucher, live, "docs-4-voucher-download.png")

    _send_with_long_addresses(system.smtp_port)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(mailbox)
    page.locator("td.subject a", has_text="is confirmed").first.wait_for(timeout=20_000)
    for subject in page.locator("td.subject").all():  # nothing pushed off screen
        box = subject.bounding_box()
        assert box is not None
        assert box["x"] + box["width"] <= 1280
    shoot(page.locator("body"), "mailcatcher.png")

    confirmation = page.locator("tr", has_text="is confirmed").first
    attachment = confirmation.locator("a", has_text=".pdf").get_attribute("href")
    confirmation.locator("td.subject a").click()
    page.frame_locator("iframe").get_by_text("is confirmed").wait_for()
    shoot(page, "mail-html-view.png")

    # The voucher as the mail catcher serves it: inline, in Chromium's own PDF viewer.
    page.set_viewport_size({"width": 900, "height": 1000})
    pdf = page.goto(f"{mailbox}{attachment}")
    assert pdf is not None
    assert pdf.headers["content-type"] == "application/pdf"
    page.wait_for_timeout(2_000)  # the viewer draws after the load event
    shoot(page, "voucher.png")


def _send_with_long_addresses(smtp_port: int) -> None:
    """A mail whose addresses would push the subject off screen if they were not cut."""
    message = EmailMessage()
    message["From"], message["To"] = LONG_ADDRESS, LONG_ADDRESS.replace("reservations", "guests")
    message["Subject"] = "Group booking request for 12 rooms, 3-7 March: please confirm"
    message.set_content("Hello")
    with smtplib.SMTP("127.0.0.1", smtp_port, local_hostname="localhost", timeout=5) as smtp:
        smtp.send_message(message)
