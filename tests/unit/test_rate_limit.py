"""The sliding window counter behind the booking API's rate limits, on a clock the test
moves, and the keys it counts by."""

from __future__ import annotations

import pytest

from services.booking.errors import RateLimited
from services.booking.rate_limit import Hold, Rate, SlidingWindow, address_key, email_key


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def window(text: str, clock: Clock) -> SlidingWindow:
    return SlidingWindow(Rate.parse(text), clock)


def test_a_limit_admits_its_amount_then_says_how_long_to_wait() -> None:
    clock = Clock(600.0)  # the start of a one-minute window
    limit = window("3/minute", clock)
    assert [limit.take("a") for _ in range(3)] == [None, None, None]
    wait = limit.take("a")
    assert wait is not None
    assert 60 < wait <= 61  # this window's count decays in the next one
    assert limit.take("b") is None  # another key has its own count


def test_after_the_wait_it_gave_a_request_is_admitted_and_not_a_second_earlier() -> None:
    clock = Clock(600.0)
    limit = window("10/minute", clock)
    for _ in range(10):
        assert limit.take("a") is None
    clock.now += 90  # half-way into the next window: the full one weighs 50%
    wait = limit.take("a")  # 10 * 0.5 = 5 in the sliding minute: admitted
    assert wait is None
    for _ in range(4):
        assert limit.take("a") is None
    wait = limit.take("a")  # 5 + 5: full until the previous window's share decays
    assert wait is not None
    clock.now += wait - 1
    assert limit.take("a") is not None
    clock.now += 1
    assert limit.take("a") is None


def test_requests_given_back_do_not_count() -> None:
    limit = window("2/hour", Clock())
    assert limit.take("a") is None
    assert limit.take("a") is None
    limit.give_back("a")
    assert limit.take("a") is None
    assert limit.take("a") is not None


def test_old_windows_are_dropped_whole_so_only_two_windows_of_keys_are_kept() -> None:
    clock = Clock(600.0)
    limit = window("5/minute", clock)
    for n in range(1000):
        limit.take(f"client-{n}")
    clock.now += 60
    limit.take("late")
    clock.now += 60
    limit.take("later")
    assert set(limit._current) | set(limit._previous) == {"late", "later"}


@pytest.mark.parametrize(
    ("text", "amount", "seconds"),
    [
        ("20/minute", 20, 60),
        ("10 per hour", 10, 3600),
        ("100/5 minutes", 100, 300),
        ("1/Day", 1, 86400),
    ],
)
def test_rates_read_as_the_settings_document_them(text: str, amount: int, seconds: int) -> None:
    rate = Rate.parse(text)
    assert (rate.amount, rate.seconds) == (amount, seconds)


@pytest.mark.parametrize("text", ["", "20", "twenty/minute", "0/minute", "5/0 minutes", "5/week"])
def test_a_rate_that_is_not_n_per_period_is_refused_with_its_reason(text: str) -> None:
    with pytest.raises(ValueError, match=r"rate like|at least 1"):
        Rate.parse(text)


def test_ipv6_clients_share_a_limit_per_64_and_ipv4_mapped_ones_count_as_ipv4() -> None:
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:192.0.2.7") == address_key("192.0.2.7") == "192.0.2.7"
    assert address_key(None) == "unknown"


def test_another_case_or_a_plus_tag_is_the_same_inbox() -> None:
    assert email_key("Ada+hotel@Example.COM") == email_key("ada@example.com")
    assert email_key("ada@example.com") != email_key("ada@example.org")


def test_a_hold_is_taken_once_and_given_back_once() -> None:
    limit = window("1/hour", Clock())
    hold = Hold(limit, "ada@example.com")
    hold.take()
    hold.take()  # a transaction run again after a conflict counts once
    with pytest.raises(RateLimited, match="guest email") as refused:
        Hold(limit, "ADA@example.com").take()
    assert refused.value.retry_after > 0
    hold.give_back()
    hold.give_back()
    Hold(limit, "ada@example.com").take()
