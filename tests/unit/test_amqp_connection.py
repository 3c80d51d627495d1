"""Opening and closing AMQP connections (shared/messaging/connection.py) and the subscription's
reconnect backoff, against sockets that refuse or never answer: no broker needed."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any, cast

import aio_pika
import pytest
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage

from shared.errors import BrokerUnavailable
from shared.messaging import subscription
from shared.messaging.acks import AckBatcher
from shared.messaging.config import ConsumerConfig
from shared.messaging.connection import close_quietly, connect
from shared.messaging.subscription import Subscription
from shared.messaging.topology import consumer_topology
from shared.observability.metrics import Metrics, QueueMetrics

HOST = "127.0.0.1"


@pytest.fixture
def made_connections(monkeypatch: pytest.MonkeyPatch) -> list[aio_pika.Connection]:
    """Every aio_pika Connection built during the test, whoever builds it."""
    made: list[aio_pika.Connection] = []
    original = aio_pika.Connection.__init__

    def init(self: aio_pika.Connection, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(aio_pika.Connection, "__init__", init)
    return made


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A port bound but not listening: a connect to it is refused at once."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        yield int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) but never says a word."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


async def test_a_refused_connect_raises_broker_unavailable_and_leaves_no_connection_open(
    made_connections: list[aio_pika.Connection], refusing_port: int
) -> None:
    with pytest.raises(BrokerUnavailable, match="cannot connect"):
        await connect(f"amqp://guest:guest@{HOST}:{refusing_port}/", name="t", timeout=2.0)
    assert made_connections, "no aio_pika Connection was built"
    # An unclosed one would be closed by its __del__ wherever GC runs: off the loop that is
    # "coroutine 'Connection.close' was never awaited".
    assert [c for c in made_connections if not c.is_closed] == []


async def test_a_connect_that_times_out_raises_broker_unavailable_and_leaves_no_connection_open(
    made_connections: list[aio_pika.Connection], silent_port: int
) -> None:
    with pytest.raises(BrokerUnavailable, match="cannot connect"):
        await connect(f"amqp://guest:guest@{HOST}:{silent_port}/", name="t", timeout=0.3)
    assert made_connections, "no aio_pika Connection was built"
    assert [c for c in made_connections if not c.is_closed] == []


async def test_a_connect_cancelled_by_its_caller_is_cancelled_and_leaves_no_connection_open(
    made_connections: list[aio_pika.Connection], silent_port: int
) -> None:
    task = asyncio.create_task(
        connect(f"amqp://guest:guest@{HOST}:{silent_port}/", name="t", timeout=10.0)
    )
    await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.wait([task])
    assert task.cancelled()
    assert made_connections, "no aio_pika Connection was built"
    assert [c for c in made_connections if not c.is_closed] == []


class HangingClose:
    """A connection whose close never finishes (a broker that never answers close-ok)."""

    is_closed = False

    def __init__(self) -> None:
        self.closing = asyncio.Event()

    async def close(self) -> None:
        self.closing.set()
        await asyncio.Event().wait()


async def test_a_task_cancelled_while_closing_a_connection_quietly_ends_cancelled() -> None:
    connection = HangingClose()
    task = asyncio.create_task(close_quietly(cast(AbstractConnection, connection), timeout=10))
    await asyncio.wait_for(connection.closing.wait(), 2)
    task.cancel()
    await asyncio.wait([task], timeout=2)
    assert task.done()
    assert task.cancelled(), "the caller's cancel was swallowed by close_quietly"


async def test_a_close_that_times_out_is_still_quiet() -> None:
    connection = HangingClose()
    await close_quietly(cast(AbstractConnection, connection), timeout=0.05)
    assert connection.closing.is_set()


async def test_reconnect_attempts_of_a_subscription_leave_no_waiting_task_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts = 0
    tried_often = asyncio.Event()

    async def unavailable(url: str, *, name: str, timeout: float) -> AbstractConnection:
        nonlocal attempts
        attempts += 1
        if attempts >= 10:
            tried_often.set()
        raise BrokerUnavailable("refused")

    monkeypatch.setattr(subscription, "connect", unavailable)

    async def deliver(message: AbstractIncomingMessage, acks: AckBatcher) -> None:
        pass

    names = consumer_topology("voucher")
    config = ConsumerConfig(service="voucher", amqp_url="amqp://x", reconnect_max_delay=0.01)
    subscribed = Subscription(config, names, QueueMetrics(Metrics(), names.queue), deliver)
    before = asyncio.all_tasks()
    stop = asyncio.Event()
    runner = asyncio.create_task(subscribed.run(stop))
    try:
        await asyncio.wait_for(tried_often.wait(), 5)
        # Only the current backoff's wait may be under way, not one per attempt so far.
        waiting = asyncio.all_tasks() - before - {runner}
        assert len(waiting) <= 1, f"{len(waiting)} tasks left after {attempts} attempts"
    finally:
        stop.set()
        await asyncio.wait_for(runner, 2)
