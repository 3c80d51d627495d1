"""Several brokers in AMQP_URL (shared/messaging/addresses.py) against a real one: two
addresses, each a TCP proxy in front of the machine's RabbitMQ, and a consumer that must carry
on through whichever address still answers when the other goes away, consuming and
publishing. (A real three-node cluster is the cluster suite's: tests/cluster.)"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.messaging.connection import close_quietly, connect
from shared.messaging.envelope import event_message
from shared.messaging.topology import EVENTS_EXCHANGE, declare_all
from tests.support.amqp import channel, publish_raw
from tests.support.dlq import park
from tests.support.events import confirmed
from tests.support.infra import AMQP_HOST, AMQP_PORT, TestEnv
from tests.support.processes import ROOT
from tests.support.stack import effects, equals, fetchval, running_consumer, wait_until
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture
async def proxies() -> AsyncIterator[tuple[TcpProxy, TcpProxy]]:
    async with TcpProxy(AMQP_HOST, AMQP_PORT) as one, TcpProxy(AMQP_HOST, AMQP_PORT) as two:
        yield one, two


def listing(env: TestEnv, *ports: int) -> str:
    """The env's URL with ``ports`` as its host list."""
    single = env.amqp_url(port=ports[0])
    hosts = ",".join(f"{AMQP_HOST}:{port}" for port in ports)
    return single.replace(f"{AMQP_HOST}:{ports[0]}", hosts, 1)


async def _unpublished(env: TestEnv) -> int:
    sql = "SELECT count(*) FROM voucher.outbox WHERE published_at IS NULL"
    return int(await fetchval(env, sql))


async def test_a_consumer_moves_to_the_other_broker_each_time_its_own_goes_away(
    env: TestEnv, proxies: tuple[TcpProxy, TcpProxy]
) -> None:
    async with channel(env.amqp_url()) as admin:
        await declare_all(admin)  # the booking service's queue takes the progress reports
    url = listing(env, proxies[0].port, proxies[1].port)
    async with running_consumer("voucher", env, amqp_url=url) as process:
        for handled, (gone, left) in enumerate((proxies, proxies[::-1]), 1):
            await gone.cut()  # from now on it resets every connection, old and new
            cut_at = time.monotonic()
            await wait_until(lambda: process.consumer.consuming, what="consuming again")
            await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(confirmed()))
            await wait_until(lambda n=handled: equals(effects(env, "voucher"), n))
            # Its progress report went out too: the publisher moved as well.
            await wait_until(lambda: equals(_unpublished(env), 0), what="reports published")
            print(f"handled through the other broker {time.monotonic() - cut_at:.2f}s after")
            assert gone.open_links == 0
            assert left.open_links >= 2, "the consumer and its publisher are not both on it"
            await gone.restore()


async def test_a_connect_skips_brokers_that_refuse_and_takes_the_first_that_answers(
    env: TestEnv, proxies: tuple[TcpProxy, TcpProxy]
) -> None:
    dead, alive = proxies
    await dead.cut()
    url = listing(env, dead.port, alive.port)
    for _ in range(3):  # whichever the rotation starts with
        connection = await connect(url, name="test", timeout=2)
        assert not connection.is_closed
        assert alive.open_links == 1
        await close_quietly(connection)
        await wait_until(lambda: alive.open_links == 0, what="closed")


async def test_bookingctl_reads_a_dead_letter_queue_through_the_broker_that_answers(
    env: TestEnv, proxies: tuple[TcpProxy, TcpProxy]
) -> None:
    dead, alive = proxies
    [parked] = await park(env.amqp_url(), "email", [confirmed()])
    await dead.cut()
    bookingctl = str(Path(sys.executable).parent / "bookingctl")
    variables = {"AMQP_URL": listing(env, dead.port, alive.port), "DATABASE_URL": env.database_url}
    for _ in range(3):  # each process starts its rotation anywhere: the dead one, some runs
        process = await asyncio.create_subprocess_exec(
            *(bookingctl, "dlq", "show", "email", "--json"),
            cwd=ROOT,
            env={**os.environ, **variables},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, out.decode()
        assert parked in out.decode()
