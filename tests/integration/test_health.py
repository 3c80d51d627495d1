"""Health endpoints of a consumer against real faults: its queue deleted under it (the broker
cancels the consumer but keeps the connection), the broker and PostgreSQL cut off behind a
TCP proxy. Readiness must turn 503 with the reason, and come back by itself."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import httpx

from shared.messaging.envelope import event_message
from shared.messaging.topology import EVENTS_EXCHANGE, consumer_topology
from tests.support.amqp import publish_raw
from tests.support.events import confirmed
from tests.support.infra import AMQP_HOST, AMQP_PORT, AMQP_USER, TestEnv, rabbitmqctl
from tests.support.stack import effects, equals, running_consumer, wait_until
from tests.support.tcp_proxy import TcpProxy

VOUCHER = consumer_topology("voucher")


async def _ready(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.get(f"{url}/health/ready")


async def test_a_consumer_whose_queue_is_deleted_turns_unready_then_consumes_again_by_itself(
    env: TestEnv,
) -> None:
    async with running_consumer("voucher", env) as process:
        url = process.ops_url
        async with httpx.AsyncClient(timeout=5) as client:
            live = await client.get(f"{url}/health/live")
            ready = await client.get(f"{url}/health/ready")
        assert live.status_code == 200
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "consumer": "ok", "deliveries": "ok"}

        # Without the right to declare, the consumer cannot re-subscribe: its unready spell
        # lasts until the right comes back, so the test cannot miss it.
        await rabbitmqctl("set_permissions", "-p", env.vhost, AMQP_USER, "^$", ".*", ".*")
        # The broker answers with basic.cancel on the consumer's still-open channel.
        await rabbitmqctl("delete_queue", VOUCHER.queue, "-p", env.vhost)
        await wait_until(lambda: _status_is(url, 503), what="unready")
        unready = (await _ready(url)).json()
        assert unready["reason"] == "consumer: not consuming voucher.booking-events (reconnecting)"
        assert unready["checks"]["database"] == "ok"

        await rabbitmqctl("set_permissions", "-p", env.vhost, AMQP_USER, ".*", ".*", ".*")
        await wait_until(lambda: _status_is(url, 200), what="ready again, by itself")
        # Consuming again for real: the queue and its binding were declared anew.
        event = confirmed(booking_id=uuid4())
        await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(event))
        await wait_until(
            lambda: equals(effects(env, "voucher", str(event.booking_id)), 1), what="voucher"
        )
        metrics = await process.metrics.render()
    assert b'hotel_consumer_subscriptions_lost_total{queue="voucher.booking-events"} 1.0' in metrics


def _via(database_url: str, port: int) -> str:
    parts = urlsplit(database_url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


async def test_readiness_says_which_link_is_cut_and_recovers_when_it_is_restored(
    env: TestEnv,
) -> None:
    pg = urlsplit(env.database_url)
    async with (
        TcpProxy(AMQP_HOST, AMQP_PORT) as broker,
        TcpProxy(pg.hostname or "127.0.0.1", pg.port or 5432) as database,
        running_consumer(
            "voucher",
            env,
            amqp_url=env.amqp_url(port=broker.port),
            database_url=_via(env.database_url, database.port),
            health_check_timeout=1.0,
        ) as process,
    ):
        url = process.ops_url
        assert (await _ready(url)).status_code == 200

        await broker.cut()
        await wait_until(lambda: not process.consumer.consuming, what="subscription lost")
        unready = await _ready(url)
        assert unready.status_code == 503
        assert unready.json()["checks"]["database"] == "ok"
        assert "not consuming voucher.booking-events" in unready.json()["reason"]
        await broker.restore()
        await wait_until(lambda: process.consumer.consuming, timeout=30, what="consuming again")
        assert (await _ready(url)).status_code == 200

        await database.cut()
        unready = await _ready(url)
        assert unready.status_code == 503
        assert unready.json()["checks"]["consumer"] == "ok"
        assert unready.json()["reason"].startswith("database: ")
        await database.restore()
        await wait_until(
            lambda: _status_is(url, 200), timeout=15, what="ready after the database is back"
        )


async def _status_is(url: str, status: int) -> bool:
    return (await _ready(url)).status_code == status
