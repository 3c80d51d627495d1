"""The broker's own size limit (deploy/rabbitmq/rabbitmq.conf), on the machine's RabbitMQ as
`make services` configures it, and the consumers' limit below it."""

from __future__ import annotations

import os
import subprocess

import aio_pika
import aiormq
import pytest

from devrun.broker_limits import CONF, limits
from shared.settings import ConsumingSettings
from tests.support.infra import TestEnv

BROKER_LIMIT = limits(CONF.read_text())["max_message_size"]


def _running_limit() -> int | None:
    try:
        out = subprocess.run(
            ["rabbitmqctl", "eval", "application:get_env(rabbit, max_message_size)."],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return int(out.removeprefix("{ok,").removesuffix("}")) if out.startswith("{ok,") else None


def test_the_consumers_refuse_bodies_below_what_the_broker_accepts() -> None:
    # A dead-lettered copy has the original's body: it must fit under the broker's limit.
    assert ConsumingSettings().max_message_bytes < BROKER_LIMIT


async def test_the_broker_refuses_a_body_over_its_max_message_size(env: TestEnv) -> None:
    running = _running_limit()
    if running != BROKER_LIMIT:
        if os.environ.get("CI"):
            pytest.fail(f"the local broker's max_message_size is {running}: run make services")
        pytest.skip(f"the local broker's max_message_size is {running}, not {BROKER_LIMIT}")
    connection = await aio_pika.connect(env.amqp_url(), timeout=5)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue("size-probe", durable=True)
        await channel.default_exchange.publish(aio_pika.Message(b"x" * BROKER_LIMIT), "size-probe")
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed, match="max size"):
            await channel.default_exchange.publish(
                aio_pika.Message(b"x" * (BROKER_LIMIT + 1)), "size-probe"
            )
        assert queue.name
    finally:
        await connection.close()
