"""What the compose tests book, read and probe: bookings with a guest each, the mail catcher's
messages, fulfilment steps, each container's privileges as seen from inside, and the
operations each broker user must be refused."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from shared.messaging.topology import EVENTS_EXCHANGE, FULFILMENT_EXCHANGE, consumer_topology
from tests.compose.commands import ROOT
from tests.compose.system import ComposedSystem, read_mail
from tests.integration.test_rabbitmq_permissions import Operation, consume, declare, publish
from tests.support.stack import spread_booking

# Run inside an app container as its own user: who it runs as, and what it may do.
IDENTITY = """
import json, os
def writable(path):
    try:
        with open(os.path.join(path, ".probe"), "w"):
            pass
        os.remove(os.path.join(path, ".probe"))
        return True
    except OSError:
        return False
status = dict(line.split(":", 1) for line in open("/proc/1/status").read().splitlines())
print(json.dumps({
    "uid": os.getuid(),
    "gid": os.getgid(),
    "capabilities": status["CapEff"].strip(),
    "no_new_privs": status["NoNewPrivs"].strip(),
    "root_writable": writable("/") or writable("/app"),
    "tmp_writable": writable("/tmp"),
}))
"""


def guest_booking(tag: str) -> Callable[[int], dict[str, Any]]:
    """The i-th booking of a run, each for a guest of its own: ``<tag>-<i>@example.com``."""

    def body(i: int) -> dict[str, Any]:
        return {**spread_booking(i), "guest_name": f"Guest {i}", "guest_email": guest(tag, i)}

    return body


def guest(tag: str, i: int) -> str:
    return f"{tag}-{i}@example.com"


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, what: str, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.5)


async def mails(system: ComposedSystem) -> list[dict[str, Any]]:
    """Every message the mail catcher holds (its API's summaries)."""
    return await asyncio.to_thread(read_mail, system.mailpit_url)


def recipients(messages: list[dict[str, Any]]) -> list[str]:
    return [to["Address"] for m in messages for to in m["To"]]


async def fulfilment(client: httpx.AsyncClient, booking_id: str) -> dict[str, str]:
    """Each fulfilment step's status: {"email": "done", ...}."""
    answer = await client.get(f"/bookings/{booking_id}")
    answer.raise_for_status()
    return {step: s["status"] for step, s in answer.json()["fulfilment"].items()}


async def identity(system: ComposedSystem, container_id: str) -> dict[str, Any]:
    out = await system.run("docker", "exec", container_id, "python", "-c", IDENTITY)
    found: dict[str, Any] = json.loads(out)
    return found


async def host_config(system: ComposedSystem, container_id: str) -> dict[str, Any]:
    out = await system.run("docker", "inspect", "--format", "{{json .HostConfig}}", container_id)
    found: dict[str, Any] = json.loads(out)
    return found


async def email_shares(system: ComposedSystem, tag: str) -> Counter[str]:
    """How many of the run's emails each container sent (sent_by is hostname:pid, and a
    container's hostname is its short id)."""
    conn = await asyncpg.connect(system.env.database_url, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT sent_by FROM email.emails WHERE recipient LIKE $1", f"{tag}-%"
        )
    finally:
        await conn.close()
    return Counter(str(r["sent_by"]).split(":")[0] for r in rows)


def bookingctl(system: ComposedSystem) -> list[str]:
    """bookingctl on the host, with the AMQP URL as the README gives it (its port published
    on RABBITMQ_AMQP_PORT) and the database as the ops role, at its container's address."""
    readme = (ROOT / "README.md").read_text()
    [url] = re.findall(r"`(amqp://operator:<password>@127\.0\.0\.1:5672/hotel)`", readme)
    url = url.replace("<password>", system.values["RABBITMQ_OPERATOR_PASSWORD"])
    url = url.replace(":5672/", f":{system.port('RABBITMQ_AMQP_PORT')}/")
    return [
        "env",
        f"AMQP_URL={url}",
        f"DATABASE_URL={system.database_url('ops', 'POSTGRES_OPS_PASSWORD')}",
        str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "bookingctl"),
    ]


def forbidden() -> list[tuple[str, str, Operation]]:
    """For each service's user, what its permissions must refuse."""
    email, voucher = consumer_topology("email"), consumer_topology("voucher")
    notification = consumer_topology("notification")
    return [
        ("booking", "publishes a fulfilment report", publish(FULFILMENT_EXCHANGE)),
        ("booking", "consumes a consumer's queue", consume(email.queue)),
        ("booking", "publishes through the default exchange", publish("", email.queue)),
        ("email", "publishes a booking event", publish(EVENTS_EXCHANGE)),
        ("email", "consumes another's queue", consume(voucher.queue)),
        ("email", "publishes through the default exchange", publish("", voucher.queue)),
        ("email", "declares another's queue", declare(voucher.queue)),
        ("voucher", "publishes a booking event", publish(EVENTS_EXCHANGE)),
        ("voucher", "consumes another's queue", consume(notification.queue)),
        ("voucher", "publishes to another's retry exchange", publish(email.retry_exchange)),
        ("notification", "publishes a booking event", publish(EVENTS_EXCHANGE)),
        ("notification", "consumes another's queue", consume(email.queue)),
        ("notification", "reads another's dead letters", consume(email.dead_letter_queue)),
        ("operator", "consumes a work queue", consume(email.queue)),
        ("operator", "publishes a booking event", publish(EVENTS_EXCHANGE)),
    ]


def allowed() -> list[tuple[str, str, Operation]]:
    """...and what it must allow: without these, a refusal could be a broken login."""
    return [
        ("booking", "consumes its own queue", consume(consumer_topology("booking").queue)),
        *(
            (user, "consumes its own queue", consume(consumer_topology(user).queue))
            for user in ("email", "voucher", "notification")
        ),
        ("operator", "reads dead letters", consume(consumer_topology("email").dead_letter_queue)),
    ]
