from __future__ import annotations

import random
from datetime import UTC, datetime

from shared.messaging.retry import RetryPolicy, failure_headers
from shared.messaging.topology import RETRY_LEVELS, consumer_topology, resolve_dead_letter_queue


def test_backoff_doubles_per_attempt_with_jitter_in_the_upper_half() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=60.0)
    rng = random.Random(7)
    for attempt, full in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0)]:
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert min(delays) >= full / 2
        assert max(delays) <= full
        assert len(set(delays)) > 100  # jittered, not constant


def test_backoff_is_capped_at_the_maximum_delay() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0)
    assert all(5.0 <= policy.delay(30) <= 10.0 for _ in range(50))


def test_attempts_run_out_at_the_configured_maximum() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert not policy.exhausted(2)
    assert policy.exhausted(3)


def test_failure_headers_keep_the_first_failure_and_drop_broker_bookkeeping() -> None:
    first = datetime(2030, 1, 1, tzinfo=UTC)
    later = datetime(2030, 1, 2, tzinfo=UTC)
    h1 = failure_headers(
        {}, error=ValueError("boom"), attempts=1, service="email", queue="q", now=first
    )
    h1["x-death"] = [{"count": 1}]
    h1["x-first-death-reason"] = "expired"
    h2 = failure_headers(
        h1, error=KeyError("bang"), attempts=2, service="email", queue="q", reason="why", now=later
    )
    assert h2["x-first-failure-at"] == first.isoformat()
    assert h2["x-last-failure-at"] == later.isoformat()
    assert h2["x-attempts"] == 2
    assert h2["x-exception-type"] == "KeyError"
    assert h2["x-reason"] == "why"
    assert "x-death" not in h2
    assert "x-first-death-reason" not in h2


def test_error_messages_in_headers_are_bounded() -> None:
    headers = failure_headers(
        {}, error=ValueError("x" * 10_000), attempts=1, service="s", queue="q"
    )
    assert len(headers["x-exception-message"]) == 1000


def test_each_consumer_has_its_own_queue_dead_letter_queue_and_retry_levels() -> None:
    email = consumer_topology("email")
    assert email.queue == "email.booking-events"
    assert email.dead_letter_queue == "email.dlq"
    assert email.retry_queue(1) == "email.retry.1"
    assert email.retry_queue(99) == f"email.retry.{RETRY_LEVELS}"
    assert len(email.retry_queues) == RETRY_LEVELS
    assert resolve_dead_letter_queue("email") == "email.dlq"
    assert resolve_dead_letter_queue("voucher.dlq") == "voucher.dlq"
