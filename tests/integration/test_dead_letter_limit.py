"""Dead-letter queues carry a delivery limit no inspection reaches, and a broker whose
dead-letter queues an older release declared without it still lets every service start."""

from __future__ import annotations

import logging

import aio_pika
import pytest

from shared.deadletters.operations import DeadLetterOps, OpsConfig
from shared.messaging.topology import (
    CONSUMER_SERVICES,
    DEAD_LETTER_DELIVERY_LIMIT,
    consumer_topology,
)
from tests.support.amqp import channel, queue_depth
from tests.support.infra import TestEnv, queue_settings
from tests.support.stack import booking_api, running_consumer

LIMIT_ARGUMENT = f'{{"x-delivery-limit",{DEAD_LETTER_DELIVERY_LIMIT}}}'


async def test_every_dead_letter_queue_is_declared_with_a_limit_no_inspection_reaches(
    env: TestEnv,
) -> None:
    async with booking_api(env):  # it declares every consumer's queues when missing
        pass
    found = await queue_settings(env.vhost)
    for service in [*CONSUMER_SERVICES, "booking"]:
        assert LIMIT_ARGUMENT in found[consumer_topology(service).dead_letter_queue][1], service
    # Every look returns the message to its queue, counting as a redelivery (RabbitMQ 4.x
    # would drop it after 20 without the limit: a dead-letter queue has no target of its own).
    email = consumer_topology("email")
    async with channel(env.amqp_url()) as ch:
        message = aio_pika.Message(b"{}", message_id="parked")
        await ch.default_exchange.publish(message, routing_key=email.dead_letter_queue)
    ops = DeadLetterOps(OpsConfig(amqp_url=env.amqp_url(), idle_timeout=0.5))
    for _ in range(25):
        await ops.list_queues()
        assert [m.message_id for m in await ops.show("email", limit=5)] == ["parked"]
    assert await queue_depth(env.amqp_url(), email.dead_letter_queue) == 1


async def test_a_service_starts_on_a_dead_letter_queue_declared_without_the_limit_and_keeps_it(
    env: TestEnv, caplog: pytest.LogCaptureFixture
) -> None:
    # As an older release declared it. Redeclaring it with the limit would fail
    # (PRECONDITION_FAILED: inequivalent arg) and stop the service from starting; deleting it
    # would lose what it holds.
    email = consumer_topology("email")
    async with channel(env.amqp_url()) as ch:
        await ch.declare_queue(
            email.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        message = aio_pika.Message(b"{}", message_id="parked before the upgrade")
        await ch.default_exchange.publish(message, routing_key=email.dead_letter_queue)
    with caplog.at_level(logging.WARNING, logger="shared.messaging.topology"):
        async with running_consumer("email", env) as process:
            assert process.consumer.consuming
    assert f"{email.dead_letter_queue} was declared by an older release" in caplog.text
    found = await queue_settings(env.vhost)
    assert LIMIT_ARGUMENT not in found[email.dead_letter_queue][1]  # kept as it was
    assert await queue_depth(env.amqp_url(), email.dead_letter_queue) == 1
