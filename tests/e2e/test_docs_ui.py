"""The docs UI works for a person: in a real headless Chromium (Debian's package, driven by
Playwright), /docs books a room with the example body exactly as "Try it out" shows it, then
reads the booking back, first without its management token, then with it entered under
"Authorize". Screenshots are kept in tests/artifacts/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page

from tests.support.infra import TestEnv
from tests.support.processes import booking_process

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture
def api(env: TestEnv, logs: Path) -> Iterator[str]:
    """The booking API as a real uvicorn process on a free port, against the test's own
    database and vhost."""
    with booking_process(env, logs, HOST="127.0.0.1") as base:
        yield base


def operation(page: Page, operation_id: str) -> Locator:
    """Expand one operation of the Swagger UI and press its "Try it out"."""
    block = page.locator(f"#operations-bookings-{operation_id}")
    block.locator(".opblock-summary").click()
    block.locator("button.try-out__btn").click()
    return block


def execute(block: Locator, status: int) -> dict[str, object]:
    block.locator("button.execute").click()
    live = block.locator(".live-responses-table .response")
    live.locator(".response-col_status").filter(has_text=str(status)).wait_for(timeout=20_000)
    body = live.locator(".response-col_description pre").first.inner_text()
    parsed: dict[str, object] = json.loads(body)
    return parsed


def shoot(page: Page, block: Locator, name: str) -> None:
    """The operation from its title down to the live response."""
    ARTIFACTS.mkdir(exist_ok=True)
    block.evaluate("element => element.scrollIntoView()")
    page.screenshot(path=ARTIFACTS / name)


def test_a_person_books_a_room_from_the_docs_with_the_example_as_shown(
    api: str, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 2000})
    page.goto(f"{api}/docs")

    create = operation(page, "create_booking_bookings_post")
    shown = json.loads(create.locator("textarea.body-param__text").input_value())
    assert shown["hotel_id"] == 1  # a seeded hotel, and a stay in the future
    assert date.fromisoformat(shown["check_in"]) > date.today()
    booking = execute(create, 201)  # the example exactly as shown, untouched
    assert booking["status"] == "confirmed"
    assert booking["check_in"] == shown["check_in"]
    shoot(page, create, "docs-post-bookings-201.png")

    read = operation(page, "read_booking_bookings__booking_id__get")
    read.locator("input[placeholder='booking_id']").fill(str(booking["id"]))
    again = execute(read, 200)
    assert again["id"] == booking["id"]
    assert "guest_name" not in again  # no token yet: status and fulfilment only
    shoot(page, read, "docs-get-booking-200.png")

    authorize(page, "BookingToken", str(booking["management_token"]))
    read.locator("button.btn-clear").click()
    whole = execute(read, 200)
    assert whole["guest_name"] == shown["guest_name"]
    shoot(page, read, "docs-get-booking-with-token-200.png")


def authorize(page: Page, scheme: str, value: str) -> None:
    """Enter ``value`` for ``scheme`` in the dialog of the page's Authorize button."""
    page.locator(".auth-wrapper button.authorize").click()
    form = page.locator(".auth-container").filter(has_text=scheme)
    form.locator("input").fill(value)
    form.locator("button.authorize").click()
    page.locator("button.btn-done").first.click()
