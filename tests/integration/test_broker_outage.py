"""The broker unreachable at commit time: bookings still succeed at once, and every event is
delivered when the broker is back, with no manual step. RabbitMQ sits behind a TCP proxy
that the test cuts for real."""

from __future__ import annotations

import time

from tests.support.infra import AMQP_HOST, AMQP_PORT, TestEnv
from tests.support.stack import (
    all_consumers,
    booking_api,
    booking_body,
    effects,
    equals,
    fetchval,
    wait_until,
)
from tests.support.tcp_proxy import TcpProxy


async def _unpublished(env: TestEnv) -> int:
    return int(
        await fetchval(env, "SELECT count(*) FROM booking.outbox WHERE published_at IS NULL")
    )


async def test_bookings_succeed_while_the_broker_is_cut_off_and_every_event_arrives_later(
    env: TestEnv,
) -> None:
    async with TcpProxy(AMQP_HOST, AMQP_PORT) as proxy:
        via_proxy = env.amqp_url(port=proxy.port)
        async with booking_api(env, amqp_url=via_proxy) as (client, _), all_consumers(env):
            first = await client.post("/bookings", json=booking_body())
            assert first.status_code == 201
            await wait_until(lambda: equals(_unpublished(env), 0), what="first event published")

            await proxy.cut()
            started = time.monotonic()
            during = [await client.post("/bookings", json=booking_body()) for _ in range(5)]
            slowest = time.monotonic() - started
            assert [r.status_code for r in during] == [201] * 5
            # Far below the publish and connect timeouts (2 s each): nothing waited on the broker.
            assert slowest < 1.5, f"5 bookings took {slowest:.2f}s with the broker down"
            assert await _unpublished(env) == 5

            await proxy.restore()
            await wait_until(lambda: equals(_unpublished(env), 0), timeout=30, what="relay")
            for service in ("email", "voucher", "notification"):
                await wait_until(
                    lambda s=service: equals(effects(env, s), 6), what=f"{service} effects"
                )
