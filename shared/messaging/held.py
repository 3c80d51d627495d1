"""The deliveries a consumer holds (taken from the broker, not settled yet), and for how long.

A delivery that is never settled keeps one of the consumer's prefetch slots; once every slot
is taken the broker sends nothing more, and the consumer stops while its connection looks
healthy. So how long the oldest delivery has been held is what tells a consumer that still
moves from one that has stopped: it is exported as metrics and, past ``STALL_TIMEOUT``,
turns the process unready with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable


class HeldDeliveries:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._since: dict[Hashable, float] = {}

    def take(self, delivery: Hashable) -> None:
        self._since[delivery] = self._clock()

    def settle(self, delivery: Hashable) -> None:
        self._since.pop(delivery, None)

    def count(self) -> int:
        return len(self._since)

    def oldest_age(self) -> float:
        """Seconds the oldest delivery in hand has been held; 0 when none is."""
        if not self._since:
            return 0.0
        return self._clock() - min(self._since.values())

    def stalled(self, bound: float) -> str | None:
        """Why the deliveries in hand have stopped moving, or None while they move."""
        age = self.oldest_age()
        if age <= bound:
            return None
        return (
            f"{self.count()} deliveries in hand, the oldest for {age:.0f}s "
            f"(STALL_TIMEOUT {bound:g}s): a handler or its settling is stuck"
        )
