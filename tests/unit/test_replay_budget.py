"""Headers of a replayed message: history kept, a fresh retry budget."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.messaging.retry import (
    H_REPLAY_BASE,
    RetryPolicy,
    attempts_since_replay,
    failure_headers,
    replay_headers,
)

FIRST = datetime(2030, 1, 1, tzinfo=UTC)
LATER = datetime(2030, 1, 2, tzinfo=UTC)


def _dead_lettered(attempts: int) -> dict[str, object]:
    headers = failure_headers(
        {}, error=OSError("down"), attempts=attempts, service="email", queue="q", now=FIRST
    )
    headers["x-delivery-count"] = 3
    headers["x-death"] = [{"count": 1}]
    headers["x-first-death-reason"] = "delivery_limit"
    return headers


def test_a_replay_counts_itself_and_keeps_the_failure_history() -> None:
    once = replay_headers(_dead_lettered(5), now=LATER)
    twice = replay_headers({**once, "x-attempts": 10}, now=LATER)
    assert once["x-replay-count"] == 1
    assert twice["x-replay-count"] == 2
    assert once["x-attempts"] == 5
    assert once[H_REPLAY_BASE] == 5
    assert twice[H_REPLAY_BASE] == 10
    assert once["x-first-failure-at"] == FIRST.isoformat()
    assert once["x-replayed-at"] == LATER.isoformat()


def test_a_replay_drops_the_brokers_bookkeeping() -> None:
    headers = replay_headers(_dead_lettered(5))
    assert "x-delivery-count" not in headers
    assert "x-death" not in headers
    assert "x-first-death-reason" not in headers


def test_the_retry_budget_starts_afresh_after_a_replay() -> None:
    policy = RetryPolicy(max_attempts=3)
    replayed = replay_headers(_dead_lettered(3))
    # The runtime's next attempt is cumulative attempt 4: the first of the new budget.
    assert attempts_since_replay(replayed, 4) == 1
    assert not policy.exhausted(attempts_since_replay(replayed, 5))
    assert policy.exhausted(attempts_since_replay(replayed, 6))
    assert attempts_since_replay({}, 2) == 2  # never replayed: all attempts count


def test_a_second_failure_after_a_replay_keeps_cumulative_attempts_and_replay_count() -> None:
    replayed = replay_headers(_dead_lettered(3), now=LATER)
    again = failure_headers(
        replayed, error=OSError("still down"), attempts=6, service="email", queue="q", now=LATER
    )
    assert again["x-attempts"] == 6
    assert again["x-replay-count"] == 1
    assert again["x-first-failure-at"] == FIRST.isoformat()
    assert again["x-last-failure-at"] == LATER.isoformat()


def test_a_nonsense_base_header_never_gives_more_than_the_attempts_made() -> None:
    assert attempts_since_replay({H_REPLAY_BASE: "x"}, 3) == 3
    assert attempts_since_replay({H_REPLAY_BASE: 99}, 3) == 1


def test_the_reason_belongs_to_one_parking_and_is_not_carried_to_the_next_copy() -> None:
    parked = failure_headers(
        {}, error=OSError("down"), attempts=5, service="email", queue="q", reason="exhausted"
    )
    replayed = replay_headers({**parked, "x-last-death-reason": "expired"}, now=LATER)
    retried = failure_headers(parked, error=OSError("down"), attempts=6, service="email", queue="q")
    parked_again = failure_headers(
        replayed, error=ValueError("bad"), attempts=6, service="email", queue="q", reason="perm"
    )
    assert parked["x-reason"] == "exhausted"
    assert "x-reason" not in replayed
    assert "x-last-death-reason" not in replayed
    assert "x-reason" not in retried
    assert parked_again["x-reason"] == "perm"
