"""The broker definitions for real: the document make_definitions.py writes, imported into the
test's own vhost (users renamed so they are the test's own too, with passwords of this run),
then every service runs the whole booking flow as its own least-privilege user, each user is
refused what it must not do, and the booking service takes a fulfilment report only from the
service it speaks for."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aio_pika
import aiormq
import pytest
from aio_pika.abc import AbstractChannel

from shared.deadletters.operations import replay
from shared.events import FulfilmentProgressed, VoucherIssued
from shared.messaging.definitions import USERS, build
from shared.messaging.envelope import event_message
from shared.messaging.retry import H_REASON, REASON_WRONG_SENDER
from shared.messaging.topology import (
    CONSUMER_SERVICES,
    DEAD_LETTER_DELIVERY_LIMIT,
    EVENTS_EXCHANGE,
    FULFILMENT_EXCHANGE,
    consumer_topology,
    declare_service,
)
from tests.support.amqp import queue_depth, take
from tests.support.infra import AMQP_HOST, AMQP_PORT, TestEnv, _rabbitmqctl, queue_settings
from tests.support.smtp import smtp_server
from tests.support.stack import (
    booking_api,
    booking_body,
    equals,
    fetchval,
    running_consumer,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "deploy" / "rabbitmq" / "definitions.json"
Operation = Callable[[AbstractChannel], Awaitable[object]]


async def import_definitions(document: str) -> None:
    """rabbitmqctl runs as the rabbitmq user, who cannot read the test's tmp_path (and 3.10
    takes no definitions on stdin): a world-readable file of its own, removed at once."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="definitions-") as file:
        file.write(document)
        file.flush()
        os.chmod(file.name, 0o644)
        await _rabbitmqctl("import_definitions", file.name)


@pytest.fixture
def prefix() -> str:
    """Of this test's users: users belong to the whole broker."""
    return f"lp{uuid.uuid4().hex[:8]}-"


@pytest.fixture
async def urls(env: TestEnv, prefix: str) -> AsyncIterator[dict[str, str]]:
    """AMQP URL of each user of the definitions, imported into the test's vhost."""
    passwords = {user: secrets.token_hex(16) for user in USERS}
    definitions = build(passwords, vhost=env.vhost)
    for section in ("users", "permissions"):
        for item in definitions[section]:
            for key in ("name", "user"):
                if key in item:
                    item[key] = prefix + item[key]
    await import_definitions(json.dumps(definitions))
    vhost = quote(env.vhost, safe="")
    urls = {
        user: f"amqp://{prefix}{user}:{password}@{AMQP_HOST}:{AMQP_PORT}/{vhost}?heartbeat=5"
        for user, password in passwords.items()
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


def senders(prefix: str) -> str:
    """REPORT_SENDERS for this test's users."""
    return ",".join(f"{step}={prefix}{step}" for step in CONSUMER_SERVICES)


async def test_each_service_user_may_do_what_its_code_does_and_nothing_else(
    env: TestEnv, urls: dict[str, str], prefix: str
) -> None:
    async with (
        smtp_server() as smtp,
        running_consumer("email", env, amqp_url=urls["email"], smtp_port=smtp.port),
        running_consumer("voucher", env, amqp_url=urls["voucher"]),
        running_consumer("notification", env, amqp_url=urls["notification"]),
        # As in production: no DEV_MODE, each report checked against its step's user.
        booking_api(
            env, amqp_url=urls["booking"], dev_mode=False, report_senders=senders(prefix)
        ) as (client, _),
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
        ("operator", "publishes through the default exchange", publish("", email.queue)),
        ("operator", "publishes a fulfilment report", publish(FULFILMENT_EXCHANGE)),
    ]
    allowed: list[tuple[str, str, Operation]] = [
        ("operator", "reads dead letters", consume(booking.dead_letter_queue)),
        ("operator", "purges dead letters", purge(email.dead_letter_queue)),
        (
            "operator",
            "replays to a work queue through its retry exchange",
            publish(email.retry_exchange, email.queue),
        ),
    ]
    outcomes = {
        f"{user} {what}": await refused(urls[user], operation)
        for user, what, operation in [*forbidden, *allowed]
    }
    assert outcomes == {
        **{f"{user} {what}": True for user, what, _ in forbidden},
        **{f"{user} {what}": False for user, what, _ in allowed},
    }
    # A replay for real, as the operator: through the retry exchange, to the work queue.
    summary = await replay(urls["operator"], "booking")
    assert (summary.replayed, summary.failed, summary.error) == (1, 0, None)
    [replayed] = await take(urls["admin"], booking.queue, 1)
    assert replayed.message_id == "m-1"


def report(step: str, event_type: str = "FulfilmentProgressed") -> Any:
    now, booking_id, source = datetime.now(UTC), uuid.uuid4(), uuid.uuid4()
    if event_type == "VoucherIssued":
        return VoucherIssued(booking_id=booking_id, occurred_at=now, code="V-1", pdf_base64="")
    return FulfilmentProgressed(
        booking_id=booking_id,
        occurred_at=now,
        step=step,
        status="done",
        attempts=1,
        source_event_id=source,
        source_event_type="BookingConfirmed",
    )


async def publish_as(url: str, event: Any, user_id: str) -> None:
    connection = await aio_pika.connect(url, timeout=5)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(FULFILMENT_EXCHANGE, ensure=False)
        message = event_message(event)
        message.user_id = user_id
        await asyncio.wait_for(exchange.publish(message, ""), 5)
    finally:
        await connection.close()


async def test_a_fulfilment_report_is_taken_only_from_the_service_it_speaks_for(
    env: TestEnv, urls: dict[str, str], prefix: str
) -> None:
    booking = consumer_topology("booking")
    async with booking_api(
        env, amqp_url=urls["booking"], dev_mode=False, report_senders=senders(prefix)
    ):
        # The email service's account reports the voucher step, then hands over a voucher:
        # the broker lets it (it is its own user_id), the booking service does not.
        forged = [report("voucher"), report("voucher", "VoucherIssued")]
        for event in forged:
            await publish_as(urls["email"], event, f"{prefix}email")
        # No account can claim another's user_id: the broker closes the channel.
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed, match="user_id"):
            await publish_as(urls["email"], report("voucher"), f"{prefix}voucher")
        # The voucher service's own report is taken.
        genuine = report("voucher")
        await publish_as(urls["voucher"], genuine, f"{prefix}voucher")
        await wait_until(
            lambda: equals(fetchval(env, "SELECT count(*) FROM booking.fulfilment"), 1),
            what="the genuine report applied",
        )
        await wait_until(
            lambda: equals(queue_depth(urls["admin"], booking.dead_letter_queue), 2),
            what="the forged reports dead-lettered",
        )
    dead = await take(urls["admin"], booking.dead_letter_queue, 2)
    assert sorted(m.message_id or "" for m in dead) == sorted(str(e.event_id) for e in forged)
    assert {(m.headers or {}).get(H_REASON) for m in dead} == {REASON_WRONG_SENDER}
    applied = await fetchval(env, "SELECT booking_id FROM booking.fulfilment")
    assert applied == genuine.booking_id
    assert await fetchval(env, "SELECT count(*) FROM booking.vouchers") == 0


async def test_every_dead_letter_queue_has_its_delivery_limit_as_argument_and_policy(
    env: TestEnv, urls: dict[str, str]
) -> None:
    # The argument, and the policy that also reaches a queue an older release declared
    # without it (a queue's arguments cannot change; its policy can).
    queues = [consumer_topology(s).dead_letter_queue for s in [*CONSUMER_SERVICES, "booking"]]

    async def applied() -> bool:  # the import applies policies in the background
        found = await queue_settings(env.vhost)
        return all(found[q][0] == "dead-letter-queues-delivery-limit" for q in queues)

    await wait_until(applied, what="the policy applied")
    found = await queue_settings(env.vhost)
    for queue in queues:
        assert f'{{"x-delivery-limit",{DEAD_LETTER_DELIVERY_LIMIT}}}' in found[queue][1]


async def test_the_guest_account_is_not_part_of_the_definitions() -> None:
    definitions = json.loads(DEFINITIONS.read_text())
    assert "guest" not in {user["name"] for user in definitions["users"]}
    assert {p["user"] for p in definitions["permissions"]} == set(USERS)
