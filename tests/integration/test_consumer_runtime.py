"""The shared consumer runtime against real RabbitMQ and PostgreSQL: dead-lettering,
retries with backoff, idempotency."""

from __future__ import annotations

import asyncio
import random
from uuid import uuid4

import aio_pika

from shared.db.pool import Connection
from shared.errors import PermanentError, TransientError
from shared.events import BookingConfirmed
from shared.messaging.envelope import event_message
from shared.messaging.handlers import Handler, route
from shared.messaging.topology import EVENTS_EXCHANGE, consumer_topology
from tests.support.amqp import publish_raw, queue_depth, take
from tests.support.events import confirmed, record_email
from tests.support.infra import TestEnv
from tests.support.stack import all_consumers, effects, equals, running_consumer, wait_until

EMAIL = consumer_topology("email")


def failing(times: int, error: Exception, calls: list[str]) -> dict[str, Handler]:
    """A handler that fails ``times`` times first, then records its effect where the email
    service records a sent email (the runtime, not email delivery, is under test here)."""

    async def handler(event: BookingConfirmed, tx: Connection) -> None:
        calls.append(str(event.event_id))
        if len(calls) <= times:
            raise error
        await record_email(tx, event)

    return dict([route(BookingConfirmed, handler)])


async def test_a_poison_message_reaches_every_dead_letter_queue_while_good_ones_flow(
    env: TestEnv,
) -> None:
    url = env.amqp_url()
    async with all_consumers(env):
        await publish_raw(url, EVENTS_EXCHANGE, aio_pika.Message(b"\x00not json", message_id="p-1"))
        good = confirmed()
        await publish_raw(url, EVENTS_EXCHANGE, event_message(good))
        for service in ("email", "voucher", "notification"):
            await wait_until(
                lambda s=service: equals(effects(env, s), 1),
                what=f"{service} handled the good one",
            )
        for service in ("email", "voucher", "notification"):
            [dead] = await take(url, f"{service}.dlq", 1)
            assert dead.body == b"\x00not json"
            assert dead.message_id == "p-1"
            headers = dead.headers
            assert headers["x-reason"] == "invalid-message"
            assert headers["x-exception-type"] == "InvalidMessage"
            assert "not JSON" in str(headers["x-exception-message"])
            assert headers["x-service"] == service
            assert headers["x-original-queue"] == f"{service}.booking-events"
            assert headers["x-attempts"] == 1
            assert headers["x-first-failure-at"]
            assert headers["x-last-failure-at"]


async def test_messages_that_can_never_succeed_are_dead_lettered_without_retry(
    env: TestEnv,
) -> None:
    url = env.amqp_url()
    event = confirmed()
    async with running_consumer("email", env) as process:
        # aiormq stamps a random message_id on a message sent without one; it then differs
        # from the event_id, which would defeat deduplication.
        await publish_raw(url, EVENTS_EXCHANGE, aio_pika.Message(event.to_json()))
        wrong_schema = aio_pika.Message(
            b'{"event_type":"BookingConfirmed","version":1}', message_id=str(uuid4())
        )
        await publish_raw(url, EVENTS_EXCHANGE, wrong_schema)
        future = event.to_json().replace(b'"version":1', b'"version":9')
        await publish_raw(
            url, EVENTS_EXCHANGE, aio_pika.Message(future, message_id=str(event.event_id))
        )
        dead = await take(url, EMAIL.dead_letter_queue, 3)
    reasons = sorted(str(m.headers["x-exception-message"]) for m in dead)
    assert len(dead) == 3, reasons
    assert any("differs from event_id" in r for r in reasons)
    assert any("does not match its schema" in r for r in reasons)
    assert any("unknown version 9" in r for r in reasons)
    assert process.consumer.stats["retried"] == 0
    assert await effects(env, "email") == 0


async def test_an_event_type_a_consumer_does_not_handle_is_acked_and_ignored(env: TestEnv) -> None:
    url = env.amqp_url()
    body = b'{"event_type":"RoomRepainted","version":1,"booking_id":"x"}'
    async with running_consumer("email", env) as process:
        await publish_raw(url, EVENTS_EXCHANGE, aio_pika.Message(body, message_id="m-1"))
        await wait_until(lambda: process.consumer.stats["ignored"] == 1, what="ignored")
    assert await queue_depth(url, EMAIL.dead_letter_queue) == 0
    assert await queue_depth(url, EMAIL.queue) == 0


async def test_a_transient_failure_that_succeeds_on_the_third_attempt_has_one_effect(
    env: TestEnv,
) -> None:
    calls: list[str] = []
    handlers = failing(2, TransientError("SMTP relay busy"), calls)
    async with running_consumer("email", env, handlers=handlers, max_attempts=5) as process:
        await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(confirmed()))
        await wait_until(lambda: equals(effects(env, "email"), 1), what="third attempt")
    assert len(calls) == 3
    assert process.consumer.stats["retried"] == 2
    assert await queue_depth(env.amqp_url(), EMAIL.dead_letter_queue) == 0


async def test_a_failure_that_exhausts_its_attempts_is_dead_lettered_with_its_history(
    env: TestEnv,
) -> None:
    calls: list[str] = []
    handlers = failing(100, TransientError("SMTP relay down"), calls)
    event = confirmed()
    async with running_consumer("email", env, handlers=handlers, max_attempts=4):
        await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(event))
        [dead] = await take(env.amqp_url(), EMAIL.dead_letter_queue, 1)
    headers = dead.headers
    assert len(calls) == 4
    assert headers["x-reason"] == "retries-exhausted"
    assert headers["x-attempts"] == 4
    assert headers["x-exception-type"] == "TransientError"
    assert headers["x-exception-message"] == "SMTP relay down"
    assert headers["x-service"] == "email"
    assert headers["x-original-queue"] == EMAIL.queue
    assert str(headers["x-first-failure-at"]) < str(headers["x-last-failure-at"])
    assert dead.message_id == str(event.event_id)
    assert dead.body == event.to_json()
    assert await effects(env, "email") == 0


async def test_a_permanent_failure_is_dead_lettered_at_once(env: TestEnv) -> None:
    calls: list[str] = []
    handlers = failing(100, PermanentError("mailbox does not exist"), calls)
    async with running_consumer("email", env, handlers=handlers):
        await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(confirmed()))
        [dead] = await take(env.amqp_url(), EMAIL.dead_letter_queue, 1)
    assert len(calls) == 1
    assert dead.headers["x-reason"] == "permanent-failure"


async def test_the_same_event_delivered_twice_has_one_effect(env: TestEnv) -> None:
    event = confirmed()
    calls: list[str] = []
    async with running_consumer("email", env, handlers=failing(0, ValueError(), calls)) as process:
        for _ in range(2):
            await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(event))
        await wait_until(lambda: process.consumer.stats["duplicates"] == 1, what="duplicate")
    assert await effects(env, "email") == 1
    assert len(calls) == 1


async def test_acks_coalesced_around_parked_and_slow_messages_settle_each_message_once(
    env: TestEnv,
) -> None:
    """Handlers finish out of order and every fourth message is dead-lettered, so the
    batched acks must skip over deliveries still in hand or settled by their own frame:
    a wrong multiple ack would close the channel (redeliveries, duplicates) or lose one."""
    events = [confirmed() for _ in range(60)]
    doomed = {e.event_id for e in events[::4]}

    async def handler(event: BookingConfirmed, tx: Connection) -> None:
        await asyncio.sleep(random.uniform(0, 0.03))
        if event.event_id in doomed:
            raise PermanentError("refused on purpose")
        await record_email(tx, event)

    url = env.amqp_url()
    handlers = dict([route(BookingConfirmed, handler)])
    async with running_consumer("email", env, handlers=handlers, prefetch=20) as process:
        for event in events:
            await publish_raw(url, EVENTS_EXCHANGE, event_message(event))
        await wait_until(lambda: equals(effects(env, "email"), 45), what="45 emails recorded")
        await wait_until(
            lambda: equals(queue_depth(url, EMAIL.dead_letter_queue), 15), what="15 dead"
        )
    # Stopped: anything left unacked went back to the queue when the channel closed.
    assert await queue_depth(url, EMAIL.queue) == 0
    assert process.consumer.stats["consumed"] == 60
    assert process.consumer.stats["duplicates"] == 0
