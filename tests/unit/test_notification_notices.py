"""What notifications say, how delivery failures are classified, and the SSE wire format."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from uuid import uuid4

import pytest

from services.notification.delivery import Target, failure_for
from services.notification.feed import sse_message
from services.notification.notices import notice_for
from shared.errors import PermanentError, TransientError
from shared.events import BookingCancelled, BookingConfirmed

FACTS: dict[str, object] = {
    "booking_id": uuid4(),
    "hotel_id": 1,
    "hotel_name": "Hôtel Été",
    "room_type": "standard",
    "check_in": date(2027, 3, 1),
    "check_out": date(2027, 3, 4),
    "nights": 3,
    "total_price": Decimal("360.00"),
    "currency": "EUR",
    "guest_name": "Ada Lovelace",
    "guest_email": "ada@example.com",
}


def test_a_confirmation_and_a_cancellation_say_what_happened_with_an_ascii_title() -> None:
    confirmed = notice_for(BookingConfirmed.model_validate(FACTS))
    cancelled = notice_for(BookingCancelled.model_validate(FACTS))
    assert confirmed.message == "Booking confirmed: Hôtel Été, 2027-03-01 to 2027-03-04"
    assert cancelled.message == "Booking cancelled: Hôtel Été, 2027-03-01 to 2027-03-04"
    assert (confirmed.title, cancelled.title) == ("Booking confirmed", "Booking cancelled")
    assert confirmed.title.isascii()
    assert cancelled.title.isascii()
    assert confirmed.tags != cancelled.tags


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_a_2xx_answer_is_a_delivery(status: int) -> None:
    assert failure_for(status, "webhook x") is None


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 408])
def test_server_errors_throttling_and_timeouts_are_worth_retrying(status: int) -> None:
    assert isinstance(failure_for(status, "webhook x"), TransientError)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422, 301, 302])
def test_other_client_errors_and_redirects_cannot_succeed_by_retrying(status: int) -> None:
    failure = failure_for(status, "webhook https://h.example/x", "no such hook")
    assert isinstance(failure, PermanentError)
    assert f"webhook https://h.example/x answered {status}: no such hook" in str(failure)


def test_a_target_label_leaves_out_credentials_and_query_strings() -> None:
    target = Target("webhook", "https://user:pw@h.example:8443/hook?token=secret")
    assert target.label == "webhook https://h.example:8443/hook"


def test_an_sse_message_carries_the_row_id_the_event_name_and_one_line_of_json() -> None:
    row = {"id": 7, "message": "two\nlines", "event_type": "BookingConfirmed"}
    text = sse_message(row)
    assert text.endswith("\n\n")
    lines = text.rstrip("\n").split("\n")
    assert lines[:2] == ["id: 7", "event: notification"]
    assert len(lines) == 3
    assert json.loads(lines[2].removeprefix("data: ")) == row
