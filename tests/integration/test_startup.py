"""Start-up: schemas migrate once however many replicas start together, and the topology
exists as soon as any service has started."""

from __future__ import annotations

import asyncio

import aiormq
import asyncpg
import pytest

from services.email.bootstrap import MIGRATIONS as EMAIL_MIGRATIONS
from services.email.bootstrap import bootstrap as email_bootstrap
from services.email.settings import EmailSettings
from shared.db.migrate import migrate
from shared.db.schemas import service_migrations
from shared.errors import ConfigurationError
from shared.messaging.topology import (
    CONSUMER_SERVICES,
    consumer_entities,
    consumer_topology,
    declare_all,
)
from tests.support.amqp import channel, queue_depth
from tests.support.infra import PG_ADMIN_URL, TestEnv
from tests.support.stack import (
    all_consumers,
    booking_api,
    booking_body,
    effects,
    equals,
    fetchval,
    wait_until,
)


async def test_replicas_starting_at_once_apply_each_migration_exactly_once(env: TestEnv) -> None:
    pools = [await asyncpg.create_pool(env.database_url, min_size=1, max_size=1) for _ in range(5)]
    try:
        applied = await asyncio.gather(
            *(migrate(pool, "email", service_migrations(EMAIL_MIGRATIONS)) for pool in pools)
        )
    finally:
        for pool in pools:
            await pool.close()
    expected = len([p for d in service_migrations(EMAIL_MIGRATIONS) for p in d.glob("*.sql")])
    assert sorted(len(a) for a in applied) == [0, 0, 0, 0, expected]
    assert await fetchval(env, "SELECT count(*) FROM email.schema_migrations") == expected


async def test_declaring_the_topology_concurrently_and_repeatedly_is_harmless(env: TestEnv) -> None:
    async with channel(env.amqp_url()) as a, channel(env.amqp_url()) as b:
        await asyncio.gather(declare_all(a), declare_all(b))
        await declare_all(a)
    for service in CONSUMER_SERVICES:
        assert await queue_depth(env.amqp_url(), consumer_topology(service).queue) == 0


async def test_events_published_before_any_consumer_ever_started_wait_for_each_of_them(
    env: TestEnv,
) -> None:
    async with booking_api(env) as (client, _):
        assert (await client.post("/bookings", json=booking_body())).status_code == 201
        for service in CONSUMER_SERVICES:
            queue = consumer_topology(service).queue
            await wait_until(
                lambda q=queue: equals(queue_depth(env.amqp_url(), q), 1),
                what=queue,
                not_yet=(aiormq.exceptions.ChannelNotFoundEntity,),
            )
    async with all_consumers(env):
        for service in CONSUMER_SERVICES:
            await wait_until(lambda s=service: equals(effects(env, s), 1), what=service)


async def test_an_event_reaches_a_consumer_caught_between_declaring_its_queue_and_binding_it(
    env: TestEnv,
) -> None:
    # A consumer declares its work queue, then its retry queues, then the bindings: the
    # booking service starting in that window found the queue there and used to skip it, so
    # the fanout had nowhere to route the first events for that consumer.
    names = consumer_topology("voucher")
    (work,) = [q for q in consumer_entities(names).queues if q.name == names.queue]
    async with channel(env.amqp_url()) as ch:
        await ch.declare_queue(work.name, durable=True, arguments=work.arguments)
    async with booking_api(env) as (client, _):
        assert (await client.post("/bookings", json=booking_body())).status_code == 201
        await wait_until(lambda: equals(queue_depth(env.amqp_url(), work.name), 1), what="queued")


async def test_a_consumer_refused_for_its_configuration_leaves_no_database_connection_open(
    env: TestEnv,
) -> None:
    settings = EmailSettings(
        database_url=env.database_url, amqp_url=env.amqp_url(), batch_size=10, http_port=0
    )
    with pytest.raises(ConfigurationError, match="BATCH_SIZE must be 1"):
        await email_bootstrap(settings)
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        connections = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", env.name
        )
    finally:
        await admin.close()
    assert connections == 0
