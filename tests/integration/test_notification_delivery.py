"""Notification delivery over real HTTP: signed webhooks and ntfy pushes, received by a real
HTTP server of the test's own, with retries, dead letters and idempotency through the real
consumer runtime, RabbitMQ and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from services.notification.signing import DEFAULT_TOLERANCE, verify_signature
from shared.events import BookingCancelled, BookingConfirmed
from shared.messaging.envelope import event_message
from shared.messaging.topology import EVENTS_EXCHANGE, consumer_topology
from tests.support import events
from tests.support.amqp import publish_raw, queue_depth, take
from tests.support.infra import TestEnv
from tests.support.stack import effects, equals, fetchval, running_consumer, wait_until

NOTIFICATION = consumer_topology("notification")
SECRET = "test-secret-of-this-suite"
HANG = "hang"  # an answer that never comes in time


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    answered: int | None  # None: the client was left waiting


class Recorder:
    """A real HTTP/1.1 server on a free port that records every request and answers each
    path with the statuses it was told, in order (the last one repeats; 200 by default)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._answers: dict[str, list[int | str]] = {}
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    def answer(self, path: str, *answers: int | str) -> str:
        """Plan the answers of ``path``; returns its URL."""
        self._answers[path] = list(answers)
        return self.url(path)

    def url(self, path: str) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}{path}"

    def to(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    def served(self, path: str) -> int:
        return sum(1 for r in self.to(path) if r.answered is not None and r.answered < 300)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def _next(self, path: str) -> int | str:
        planned = self._answers.get(path, [200])
        return planned.pop(0) if len(planned) > 1 else planned[0]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            method, path, _ = (await reader.readline()).decode().split(" ", 2)
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            answer = self._next(path)
            status = None if answer == HANG else int(answer)
            self.requests.append(Received(method, path, headers, body, status))
            if status is None:
                await asyncio.sleep(30)
                return
            reply = f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            writer.write(reply.encode())
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
            self._handlers.discard(task)


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    server = Recorder()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def booking_event(
    kind: type[BookingConfirmed] | type[BookingCancelled] = BookingConfirmed, **overrides: Any
) -> BookingConfirmed | BookingCancelled:
    return events.booking_event(kind, **overrides)


def notifying(env: TestEnv, **overrides: Any) -> contextlib.AbstractAsyncContextManager[Any]:
    settings: dict[str, Any] = {
        "notification_webhook_secret": SECRET,
        "notification_http_port": 0,
        "notification_timeout": 1.0,
    }
    return running_consumer("notification", env, **{**settings, **overrides})


async def publish(env: TestEnv, event: BookingConfirmed | BookingCancelled) -> None:
    await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(event))


async def test_a_webhook_is_signed_with_a_timestamp_and_fails_with_a_wrong_secret_body_or_age(
    env: TestEnv, recorder: Recorder
) -> None:
    event = booking_event()
    async with notifying(env, notification_webhook_urls=recorder.answer("/hook", 204)):
        await publish(env, event)
        await wait_until(lambda: recorder.served("/hook") == 1, what="webhook POST")
        await wait_until(lambda: equals(effects(env, "notification"), 1), what="feed row")
    [request] = recorder.to("/hook")
    assert request.method == "POST"
    assert request.body == event.to_json()
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-event-id"] == str(event.event_id)
    assert request.headers["x-event-type"] == "BookingConfirmed"
    signature = request.headers["x-signature"]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", signature)
    signed_at = int(signature.split(",")[0].removeprefix("t="))
    assert time.time() - 60 < signed_at <= time.time()
    assert verify_signature(request.body, signature, SECRET)
    assert not verify_signature(request.body, signature, "not-the-secret")
    assert not verify_signature(request.body + b" ", signature, SECRET)
    # Captured and replayed after the tolerance (5 minutes): refused.
    stale = signed_at + DEFAULT_TOLERANCE + 1
    assert not verify_signature(request.body, signature, SECRET, now=stale)
    recorded = await fetchval(
        env,
        "SELECT status_code FROM notification.deliveries WHERE event_id = $1 AND target = $2",
        event.event_id,
        recorder.url("/hook"),
    )
    assert recorded == 204


async def test_when_one_of_two_webhooks_fails_twice_each_receives_the_event_once_in_the_end(
    env: TestEnv, recorder: Recorder
) -> None:
    # The flaky one answers 500, then leaves the client waiting past its timeout, then 200.
    urls = f"{recorder.answer('/healthy', 200)},{recorder.answer('/flaky', 500, HANG, 200)}"
    async with notifying(
        env, notification_webhook_urls=urls, notification_timeout=0.3, max_attempts=5
    ) as process:
        await publish(env, booking_event())
        await wait_until(lambda: equals(effects(env, "notification"), 1), what="third attempt")
    assert process.consumer.stats["retried"] == 2
    assert len(recorder.to("/healthy")) == 1  # never POSTed again on the retries
    assert [r.answered for r in recorder.to("/flaky")] == [500, None, 200]
    assert recorder.served("/healthy") == recorder.served("/flaky") == 1
    assert await fetchval(env, "SELECT count(*) FROM notification.deliveries") == 2


async def test_a_webhook_answering_404_dead_letters_the_event_at_once(
    env: TestEnv, recorder: Recorder
) -> None:
    event = booking_event()
    urls = f"{recorder.answer('/gone', 404)},{recorder.answer('/fine', 200)}"
    async with notifying(env, notification_webhook_urls=urls) as process:
        await publish(env, event)
        [dead] = await take(env.amqp_url(), NOTIFICATION.dead_letter_queue, 1)
    assert dead.message_id == str(event.event_id)
    assert dead.headers["x-reason"] == "permanent-failure"
    assert dead.headers["x-attempts"] == 1
    assert dead.headers["x-exception-type"] == "PermanentError"
    assert "/gone answered 404" in str(dead.headers["x-exception-message"])
    assert process.consumer.stats["retried"] == 0
    assert len(recorder.to("/gone")) == 1
    assert recorder.served("/fine") == 1
    served = await fetchval(env, "SELECT array_agg(target) FROM notification.deliveries")
    assert served == [recorder.url("/fine")]  # recorded: a replay from the DLQ skips it
    assert await effects(env, "notification") == 0
    assert await queue_depth(env.amqp_url(), NOTIFICATION.queue) == 0


async def test_the_same_event_delivered_twice_notifies_once_by_webhook_and_by_ntfy_push(
    env: TestEnv, recorder: Recorder
) -> None:
    event = booking_event(BookingCancelled)
    digest = hmac.new(SECRET.encode(), str(event.booking_id).encode(), hashlib.sha256)
    topic = "booking-" + digest.hexdigest()[:20]
    async with notifying(
        env, notification_webhook_urls=recorder.url("/hook"), ntfy_url=recorder.url("/ntfy/")
    ) as process:
        for _ in range(2):
            await publish(env, event)
        await wait_until(lambda: process.consumer.stats["duplicates"] == 1, what="duplicate")
    assert await effects(env, "notification") == 1
    assert len(recorder.to("/hook")) == 1
    [push] = [r for r in recorder.requests if r.path.startswith("/ntfy/")]
    assert push.method == "POST"
    assert push.path == f"/ntfy/{topic}"
    assert push.headers["title"] == "Booking cancelled"
    assert "x" in push.headers["tags"].split(",")
    assert push.body.decode() == (
        f"Booking cancelled: Hotel Aurora, {event.check_in} to {event.check_out}"
    )
