"""Filters and durations of the dead-letter tools."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.deadletters.errors import InvalidRequest, UnknownQueue
from shared.deadletters.model import DeadLetter, Filters, parse_duration
from shared.deadletters.operations import resolve
from shared.deadletters.sweep import Pacer

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)


def dead(**fields: object) -> DeadLetter:
    values: dict[str, object] = {
        "message_id": "m-1",
        "event_type": "BookingConfirmed",
        "booking_id": "b-1",
        "reason": "retries-exhausted",
        "exception": "OSError: down",
        "attempts": 5,
        "replay_count": 0,
        "first_failure_at": NOW - timedelta(hours=1),
        "last_failure_at": NOW - timedelta(minutes=5),
    }
    return DeadLetter.model_validate(values | fields)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        (" 1w ", timedelta(weeks=1)),
    ],
)
def test_durations_are_a_number_and_a_unit(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "30", "m", "1.5h", "-2h", "2 hours", "1y", "1\x00m", "\u0663m", "1\n m"]
)
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(InvalidRequest, match="not a duration"):
        parse_duration(text)


def test_a_duration_has_at_most_eight_digits_so_it_always_fits_a_timedelta() -> None:
    assert parse_duration("99999999w") == timedelta(weeks=99_999_999)
    with pytest.raises(InvalidRequest, match="at most 8 digits"):
        parse_duration("999999999999w")  # overflowed timedelta: an OverflowError, a 500


@pytest.mark.parametrize(
    "fields",
    [
        {"ids": ("m\x00",)},
        {"reason": "retries\x00"},
        {"event_type": "Booking\nConfirmed"},
        {"reason": ""},
        {"ids": ("x" * 256,)},
        {"limit": 2**31},
    ],
)
def test_filters_refuse_what_the_audit_table_cannot_store(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Filters.model_validate({"select_all": True, **fields})


def test_older_than_zero_seconds_is_a_filter_too() -> None:
    zero = Filters(older_than=timedelta(0))
    zero.check()  # not "say which messages"
    assert not Filters(select_all=True, older_than=timedelta(0)).takes_all
    assert not zero.matches(dead(first_failure_at=None, last_failure_at=None), NOW)


def test_every_set_filter_must_match() -> None:
    message = dead()
    assert Filters(select_all=True).matches(message, NOW)
    assert Filters(ids=("m-1", "m-2")).matches(message, NOW)
    assert not Filters(ids=("m-2",)).matches(message, NOW)
    assert Filters(reason="retries-exhausted", event_type="BookingConfirmed").matches(message, NOW)
    assert not Filters(reason="retries-exhausted", event_type="BookingCancelled").matches(
        message, NOW
    )
    assert not Filters(reason="permanent-failure").matches(message, NOW)
    assert Filters(select_all=True).takes_all
    assert not Filters(select_all=True, reason="permanent-failure").takes_all


def test_older_than_compares_the_first_failure_time() -> None:
    message = dead()  # first failed an hour ago, last five minutes ago
    assert Filters(older_than=timedelta(minutes=30)).matches(message, NOW)
    assert not Filters(older_than=timedelta(hours=2)).matches(message, NOW)
    unknown_time = dead(first_failure_at=None, last_failure_at=None)
    assert not Filters(older_than=timedelta(seconds=1)).matches(unknown_time, NOW)


def test_an_operation_without_a_selection_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="say which messages: all, some ids, or a filter"):
        Filters().check()
    Filters(select_all=True).check()
    Filters(reason="x").check()


def test_queues_are_named_by_service_or_full_name_only() -> None:
    assert resolve("email").queue == "email.booking-events"
    assert resolve("booking.dlq").queue == "booking.fulfilment-events"
    with pytest.raises(UnknownQueue, match="parcel"):
        resolve("parcel")
    with pytest.raises(UnknownQueue):
        resolve("email.booking-events")  # a work queue is not a dead-letter queue


async def test_the_pacer_holds_the_average_rate() -> None:
    pacer = Pacer(200.0)
    started = asyncio.get_running_loop().time()
    for _ in range(10):
        await pacer.wait(5)
    # 50 messages at 200/s: the last batch may start at 45/200 s.
    assert asyncio.get_running_loop().time() - started >= 0.2
    with pytest.raises(InvalidRequest):
        Pacer(0)
