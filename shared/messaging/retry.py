"""Retry policy (exponential backoff with jitter) and the headers that say why a message failed."""

from __future__ import annotations

import random
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_ERROR_LENGTH = 1000

# Header names written on retried and dead-lettered copies of a message.
H_ATTEMPTS = "x-attempts"
H_REASON = "x-reason"
H_EXCEPTION_TYPE = "x-exception-type"
H_EXCEPTION_MESSAGE = "x-exception-message"
# Where the failure came from: ``module:function`` of the deepest frame in a service's own
# code (the handler), else the deepest frame. Line numbers are left out on purpose: the
# dead-letter console groups failures by it, and a deploy must not split a group.
H_EXCEPTION_FRAME = "x-exception-frame"
H_SERVICE = "x-service"
H_ORIGINAL_QUEUE = "x-original-queue"
H_FIRST_FAILURE = "x-first-failure-at"
H_LAST_FAILURE = "x-last-failure-at"
H_REPLAY_COUNT = "x-replay-count"
# Cumulative attempts when the message was last replayed from its dead-letter queue: the
# retry budget counts attempts after it, while x-attempts stays the whole history.
H_REPLAY_BASE = "x-replay-attempts-base"
H_REPLAYED_AT = "x-replayed-at"
_BROKER_BOOKKEEPING = (
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-delivery-count",
)

# Why a message was dead-lettered.
REASON_INVALID = "invalid-message"
REASON_TOO_LARGE = "message-too-large"
REASON_PERMANENT = "permanent-failure"
REASON_EXHAUSTED = "retries-exhausted"
# Refused by the consumer's sender check (ConsumerConfig.check_sender): never applied.
REASON_WRONG_SENDER = "wrong-sender"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        "Equal jitter": half the exponential delay is fixed, half random, so retries of a
        burst of failures spread out but none comes back immediately.
        """
        exponential = min(self.max_delay, self.base_delay * 2.0 ** min(attempt - 1, 64))
        half = exponential / 2
        jitter = rng.uniform(0, half) if rng is not None else random.uniform(0, half)
        return half + jitter

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts


# A count beyond this is not ours: a publisher's header, read as no count at all, so that
# adding to it can neither overflow AMQP's 64-bit integers nor the backoff's arithmetic.
MAX_COUNT = 1_000_000


def _count(headers: dict[str, Any], name: str) -> int:
    value = headers.get(name, 0)
    valid = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT
    return value if valid else 0


def attempts_so_far(headers: dict[str, Any]) -> int:
    return _count(headers, H_ATTEMPTS)


def attempts_since_replay(headers: dict[str, Any], attempts: int) -> int:
    """Attempt ``attempts`` (cumulative) counted from the last replay: what the retry budget
    and the backoff use, so a replayed message gets a fresh set of attempts."""
    return max(1, attempts - _count(headers, H_REPLAY_BASE))


def _without_broker_bookkeeping(previous: dict[str, Any]) -> dict[str, Any]:
    headers = {k: v for k, v in previous.items() if not k.startswith(("x-death", "x-last-death-"))}
    for name in _BROKER_BOOKKEEPING:
        headers.pop(name, None)
    return headers


def replay_headers(previous: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """Headers of a copy replayed from a dead-letter queue: the failure history is kept,
    the replay counted, and the attempts so far become the base of a fresh retry budget."""
    headers = _without_broker_bookkeeping(previous)
    # Why it was parked belongs to that parking: a replayed copy that is parked again (by
    # us or by the broker's delivery limit) must not show the old reason.
    headers.pop(H_REASON, None)
    headers[H_REPLAY_COUNT] = _count(previous, H_REPLAY_COUNT) + 1
    headers[H_REPLAY_BASE] = attempts_so_far(previous)
    headers[H_REPLAYED_AT] = (now or datetime.now(UTC)).isoformat()
    return headers


def failure_headers(
    previous: dict[str, Any],
    *,
    error: BaseException,
    attempts: int,
    service: str,
    queue: str,
    reason: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Headers for the next copy of a failed message: history carried, this failure added.

    The broker's own x-death bookkeeping is dropped: it grows with every trip through a
    retry queue and our headers already say what an operator needs.
    """
    stamp = (now or datetime.now(UTC)).isoformat()
    headers = _without_broker_bookkeeping(previous)
    headers.update(
        {
            H_ATTEMPTS: attempts,
            H_EXCEPTION_TYPE: type(error).__name__,
            H_EXCEPTION_MESSAGE: str(error)[:MAX_ERROR_LENGTH],
            H_EXCEPTION_FRAME: handler_frame(error),
            H_SERVICE: service,
            H_ORIGINAL_QUEUE: queue,
            H_LAST_FAILURE: stamp,
        }
    )
    headers.setdefault(H_FIRST_FAILURE, stamp)
    headers.pop(H_REASON, None)  # set only on a dead-lettered copy, for this parking
    if reason is not None:
        headers[H_REASON] = reason
    return headers


def handler_frame(error: BaseException) -> str:
    """``module:function`` where ``error`` was raised, as seen from the services' code: the
    deepest frame in a ``services.`` module, else the deepest frame; "" without a traceback."""
    frames = [
        (str(f.f_globals.get("__name__", "?")), f.f_code.co_name)
        for f, _ in traceback.walk_tb(error.__traceback__)
    ]
    ours = [frame for frame in frames if frame[0].startswith("services.")]
    module, function = (ours or frames or [("", "")])[-1]
    return f"{module}:{function}" if module else ""
