"""The broker definitions for real: deploy/rabbitmq/definitions.json imported into the test's
own vhost (users renamed so they are the test's own too), then every service runs the whole
booking flow as its own least-privilege user, and each user is refused what it must not do."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

import aio_pika
import aiormq
import pytest
from aio_pika.abc import AbstractChannel

from shared.messaging.definitions import USERS, password_variable
from shared.messaging.topology import (
    CONSUMER_SERVICES,
    EVENTS_EXCHANGE,
    FULFILMENT_EXCHANGE,
    consumer_topology,
    declare_service,
)
from tests.support.amqp import queue_depth, take
from tests.support.infra import AMQP_HOST, AMQP_PORT, TestEnv, _rabbitmqctl
from tests.support.smtp import smtp_server
from tests.support.stack import booking_api, booking_body, equals, running_consumer, wait_until

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "deploy" / "rabbitmq" / "definitions.json"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
Operation = Callable[[AbstractChannel], Awaitable[object]]


def example_passwords() -> dict[str, str]:
    lines = (line.partition("=") for line in ENV_EXAMPLE.read_text().splitlines())
    values = {key: value for key, sep, value in lines if sep and not key.startswith("#")}
    return {user: values[password_variable(user)] for user in USERS}


async def import_definitions(document: str) -> None:
    """rabbitmqctl runs as the rabbitmq user, who cannot read the test's tmp_path (and 3.10
    takes no definitions on stdin): a world-readable file of its own, removed at once."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="definitions-") as file:
        file.write(document)
        file.flush()
        os.chmod(file.name, 0o644)
        await _rabbitmqctl("import_definitions", file.name)


@pytest.fixture
async def urls(env: TestEnv) -> AsyncIterator[dict[str, str]]:
    """AMQP URL of each user of the definitions, imported into the test's vhost."""
    prefix = f"lp{uuid.uuid4().hex[:8]}-"
    definitions = json.loads(DEFINITIONS.read_text())
    definitions["vhosts"] = [{"name": env.vhost}]
    for section in ("users", "permissions", "exchanges", "queues", "bindings"):
        for item in definitions[section]:
            item["vhost"] = env.vhost
            for key in ("name", "user"):
                if section in ("users", "permissions") and key in item:
                    item[key] = prefix + item[key]
    for user in definitions["users"]:
        del user["vhost"]
    await import_definitions(json.dumps(definitions))
    vhost = quote(env.vhost, safe="")
    urls = {
        user: f"amqp://{prefix}{user}:{password}@{AMQP_HOST}:{AMQP_PORT}/{vhost}?heartbeat=5"
        for user, password in example_passwords().items()
    }
    try:
        # The import finishes in the background: done when the last queue is there.
        last_queue = definitions["queues"][-1]["name"]
        await wait_until(
            lambda: equals(queue_depth(urls["admin"], last_queue), 0),
            what="definitions imported",
            not_yet=(aiormq.exceptions.AMQPError, ConnectionError),
        )
        yield urls
    finally:
        await asyncio.gather(*(_rabbitmqctl("delete_user", prefix + user) for user in USERS))


async def attempt(url: str, operation: Operation) -> None:
    connection = await aio_pika.connect(url, timeout=5)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await asyncio.wait_for(operation(channel), 5)
    finally:
        await connection.close()


async def refused(url: str, operation: Operation) -> bool:
    try:
        await attempt(url, operation)
    except aiormq.exceptions.ChannelAccessRefused:
        return True
    return False


def publish(exchange: str, routing_key: str = "", expiration: float | None = None) -> Operation:
    async def run(channel: AbstractChannel) -> object:
        target = (
            channel.default_exchange
            if exchange == ""
            else await channel.get_exchange(exchange, ensure=False)
        )
        message = aio_pika.Message(b"{}", message_id="m-1", expiration=expiration)
        return await target.publish(message, routing_key)

    return run


def declares(service: str) -> Operation:
    return lambda channel: declare_service(channel, service)


def consume(queue: str) -> Operation:
    async def run(channel: AbstractChannel) -> object:
        return await (await channel.get_queue(queue, ensure=False)).get(fail=False)

    return run


def declare(queue: str) -> Operation:
    return lambda channel: channel.declare_queue(queue, durable=True)


def delete(queue: str) -> Operation:
    return lambda channel: channel.queue_delete(queue)


def purge(queue: str) -> Operation:
    async def run(channel: AbstractChannel) -> object:
        return await (await channel.get_queue(queue, ensure=False)).purge()

    return run


def bind(queue: str, exchange: str) -> Operation:
    async def run(channel: AbstractChannel) -> object:
        return await (await channel.get_queue(queue, ensure=False)).bind(exchange)

    return run


async def test_each_service_user_may_do_what_its_code_does_and_nothing_else(
    env: TestEnv, urls: dict[str, str]
) -> None:
    async with (
        smtp_server() as smtp,
        running_consumer("email", env, amqp_url=urls["email"], smtp_port=smtp.port),
        running_consumer("voucher", env, amqp_url=urls["voucher"]),
        running_consumer("notification", env, amqp_url=urls["notification"]),
        booking_api(env, amqp_url=urls["booking"]) as (client, _),
    ):
        response = await client.post("/bookings", json=booking_body())
        assert response.status_code == 201
        booking_id = response.json()["id"]

        async def fulfilled() -> bool:
            steps = (await client.get(f"/bookings/{booking_id}")).json()["fulfilment"]
            return all(step["status"] == "done" for step in steps.values())

        # done for every step = each consumer consumed, handled, and its report came back
        # through fulfilment.events to the booking service's own consumer.
        await wait_until(fulfilled, what="every step done", timeout=30)
    # One test rather than three: importing definitions and cleaning up users takes a dozen
    # rabbitmqctl calls. The retry and dead-letter paths, as each service's own user:
    for service in [*CONSUMER_SERVICES, "booking"]:
        names, url = consumer_topology(service), urls[service]
        await attempt(url, declares(service))
        await attempt(url, publish(names.retry_exchange, names.retry_queue(3), expiration=0.05))
        await attempt(url, publish(names.dead_letter_exchange, names.queue))
        [returned] = await take(urls["admin"], names.queue, 1)
        assert returned.message_id == "m-1"  # back from the retry queue, to this queue only
        assert await queue_depth(urls["admin"], names.dead_letter_queue) == 1
        await attempt(url, consume(names.queue))

    # ...and what each user is refused, by the permission rules of shared/messaging/definitions.py
    email, voucher = consumer_topology("email"), consumer_topology("voucher")
    booking = consumer_topology("booking")
    forbidden: list[tuple[str, str, Operation]] = [
        ("email", "publishes a booking event", publish(EVENTS_EXCHANGE)),
        ("email", "publishes through the default exchange", publish("", voucher.queue)),
        ("email", "publishes to another's retry exchange", publish(voucher.retry_exchange)),
        ("email", "consumes another's queue", consume(voucher.queue)),
        ("email", "reads another's dead letters", consume(voucher.dead_letter_queue)),
        ("email", "declares another's queue", declare(voucher.queue)),
        ("email", "deletes another's queue", delete(voucher.queue)),
        ("email", "purges another's queue", purge(voucher.queue)),
        (
            "email",
            "binds its queue to the fulfilment fanout",
            bind(email.queue, FULFILMENT_EXCHANGE),
        ),
        ("booking", "publishes a fulfilment report", publish(FULFILMENT_EXCHANGE)),
        ("booking", "consumes a consumer's queue", consume(email.queue)),
        ("booking", "deletes a consumer's queue", delete(email.queue)),
        ("booking", "publishes through the default exchange", publish("", email.queue)),
        ("operator", "declares a queue", declare("operator.scratch")),
        ("operator", "consumes a work queue", consume(email.queue)),
        ("operator", "deletes a dead-letter queue", delete(email.dead_letter_queue)),
        ("operator", "publishes a booking event", publish(EVENTS_EXCHANGE)),
    ]
    allowed: list[tuple[str, str, Operation]] = [
        ("operator", "reads dead letters", consume(booking.dead_letter_queue)),
        ("operator", "purges dead letters", purge(email.dead_letter_queue)),
        ("operator", "replays to a work queue", publish("", email.queue)),
    ]
    outcomes = {
        f"{user} {what}": await refused(urls[user], operation)
        for user, what, operation in [*forbidden, *allowed]
    }
    assert outcomes == {
        **{f"{user} {what}": True for user, what, _ in forbidden},
        **{f"{user} {what}": False for user, what, _ in allowed},
    }


async def test_the_guest_account_is_not_part_of_the_definitions() -> None:
    definitions = json.loads(DEFINITIONS.read_text())
    assert "guest" not in {user["name"] for user in definitions["users"]}
    assert {p["user"] for p in definitions["permissions"]} == set(USERS)
