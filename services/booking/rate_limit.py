"""Rate limits of ``POST /bookings``: per client address and per guest email.

A sliding window counter (the algorithm of the ``limits`` library's
SlidingWindowCounterRateLimiter): a count per key for the current fixed window and the one
before it, the earlier one weighted by how much of it the sliding window still covers. Two
integers per key, O(1) per request; whole windows are dropped at once when time moves on,
so nothing is ever scanned and memory holds only the keys seen in the last two windows.
(``limits``' own in-memory storage rescans every key on each hit: measured, 2 ms per
request at 20,000 keys, a cost an attacker with many addresses could multiply.)

The counters live in the process: with several booking replicas behind a load balancer,
each counts what it sees, so a client spread over N replicas gets up to N times the rate.
"""

from __future__ import annotations

import ipaddress
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.booking.errors import RateLimited

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d*)\s*(second|minute|hour|day)s?\s*$", re.I)


@dataclass(frozen=True)
class Rate:
    amount: int
    seconds: int
    text: str  # as configured, for the 429's reason

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"20/minute"``, ``"10 per hour"``, ``"100/5 minutes"``."""
        match = _RATE.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not a rate like '20/minute' or '10/hour'")
        amount, count, unit = int(match[1]), int(match[2] or 1), match[3].lower()
        if amount < 1 or count < 1:
            raise ValueError(f"{text!r}: the amount and the period must be at least 1")
        return cls(amount, count * PERIODS[unit], text.strip())


class SlidingWindow:
    """Counts per key; ``take`` admits and counts a request, or says how long to wait."""

    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._window = -2
        self._current: dict[str, int] = {}
        self._previous: dict[str, int] = {}

    def _now(self) -> tuple[float, float]:
        """Move to the window of now; (seconds into it, weight left of the previous one)."""
        now, length = self._clock(), self.rate.seconds
        window = int(now // length)
        if window != self._window:
            self._previous = self._current if window == self._window + 1 else {}
            self._current, self._window = {}, window
        elapsed = now - window * length
        return elapsed, 1 - elapsed / length

    def take(self, key: str) -> int | None:
        """None: admitted and counted. Else the whole seconds until one would be."""
        elapsed, weight = self._now()
        previous, current = self._previous.get(key, 0), self._current.get(key, 0)
        if math.floor(previous * weight + current) < self.rate.amount:
            self._current[key] = current + 1
            return None
        return self._wait(elapsed, previous, current)

    def give_back(self, key: str) -> None:
        """Uncount a request that turned out not to count (failed, or a replay)."""
        self._now()
        for counts in (self._current, self._previous):
            if counts.get(key, 0) > 0:
                counts[key] -= 1
                if not counts[key]:
                    del counts[key]
                return

    def _wait(self, elapsed: float, previous: int, current: int) -> int:
        """Until previous * weight + current < amount (the test ``take`` makes)."""
        length, amount = self.rate.seconds, self.rate.amount
        if current < amount:  # the previous window's share decays within this one
            wait = length * (1 - (amount - current) / previous) - elapsed
        else:  # only in the next window, where this one's count decays in turn
            wait = (length - elapsed) + length * (1 - amount / current)
        return math.floor(max(wait, 0)) + 1


def address_key(host: str | None) -> str:
    """IPv6 clients are counted per /64 (one subscriber's usual allocation: otherwise every
    request could come from an address of its own); IPv4-mapped ones as IPv4."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def email_key(email: str) -> str:
    """Case and a ``+tag`` do not make another inbox."""
    local, _, domain = email.rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}".lower()


class Hold:
    """A request's share of the per-email limit: taken once the request is known to make a
    new booking, given back if it ends without one."""

    def __init__(self, limiter: SlidingWindow, email: str) -> None:
        self._limiter, self._key, self.taken = limiter, email_key(email), False

    def take(self) -> None:
        if self.taken:  # a transaction run again after a conflict
            return
        wait = self._limiter.take(self._key)
        if wait is not None:
            raise RateLimited(
                f"too many bookings for this guest email (at most {self._limiter.rate.text}); "
                f"try again in {wait} s",
                wait,
            )
        self.taken = True

    def give_back(self) -> None:
        if self.taken:
            self._limiter.give_back(self._key)
            self.taken = False


class BookingRateLimits:
    """The two limits of POST /bookings, built in the app's lifespan."""

    def __init__(self, per_address: Rate, per_email: Rate) -> None:
        self.per_address = SlidingWindow(per_address)
        self.per_email = SlidingWindow(per_email)

    def admit_address(self, host: str | None) -> None:
        """Every request counts here, whatever its outcome."""
        wait = self.per_address.take(address_key(host))
        if wait is not None:
            raise RateLimited(
                f"too many booking requests from this address (at most "
                f"{self.per_address.rate.text}); try again in {wait} s",
                wait,
            )

    def hold_for(self, email: str) -> Hold:
        return Hold(self.per_email, email)
