"""Reading the broker for the dead-letter console: a whole dead-letter queue into the index
(a sync), and each consumer's live state.

A sync reads every message that was ready when it began and puts each batch back (to the
queue's tail, as a dry run does) once the index has it: nothing is taken, and a message
that arrives during the sync waits for the next one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx
from aio_pika.abc import AbstractIncomingMessage
from pydantic import BaseModel, Field

from shared.deadletters import broker
from shared.deadletters.errors import BrokerUnreachable, QueueMissing
from shared.deadletters.index import DeadLetterIndex, Parked
from shared.deadletters.model import DeadLetter
from shared.deadletters.operations import DeadLetterOps, resolve
from shared.messaging.connection import close_quietly
from shared.messaging.topology import CONSUMERS

SYNC_BATCH = 500


def json_safe(value: Any) -> Any:
    """AMQP header values as JSON (jsonb holds no NUL, and no bytes or datetimes at all)."""
    if isinstance(value, dict):
        return {str(k).replace("\x00", ""): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        return value.replace("\x00", "")
    return value if value is None or isinstance(value, bool | int | float) else str(value)


def parked(queue: str, message: AbstractIncomingMessage) -> Parked:
    return Parked(
        queue, DeadLetter.of(message), json_safe(dict(message.headers or {})), message.body
    )


async def _batches(ops: DeadLetterOps, queue: str) -> AsyncIterator[list[Parked]]:
    connection = await ops.connect("sync")
    try:
        async with broker.scanning(
            connection,
            queue,
            prefetch=2 * SYNC_BATCH,
            idle_timeout=ops.config.idle_timeout,
            timeout=ops.config.connect_timeout,
        ) as scan:
            batch: list[AbstractIncomingMessage] = []
            for _ in range(scan.ready):
                message = await scan.next()
                if message is None:  # another client holds the rest: they stay unread
                    break
                batch.append(message)
                if len(batch) >= SYNC_BATCH:
                    yield [parked(queue, m) for m in batch]
                    await scan.requeue(batch[-1], through=True)
                    batch = []
            if batch:
                yield [parked(queue, m) for m in batch]
                await scan.requeue(batch[-1], through=True)
    except QueueMissing:
        return  # its consumer never started: nothing can have been dead-lettered there
    finally:
        await close_quietly(connection)


async def sync(ops: DeadLetterOps, index: DeadLetterIndex, queue: str) -> int:
    """Replace ``queue``'s rows in the index with what the broker holds; how many."""
    dead_letter_queue = resolve(queue).dead_letter_queue
    return await index.replace(dead_letter_queue, _batches(ops, dead_letter_queue))


class ConsumerState(BaseModel):
    service: str
    queue: str
    ready: int = Field(description="Messages waiting in the work queue")
    in_flight: int | None = Field(description="Delivered, not yet acked (management API)")
    consumers: int
    dead_letters: int
    rate_in: float | None = Field(description="Published to the work queue per second")
    rate_out: float | None = Field(description="Acked from the work queue per second")

    @property
    def stranded(self) -> bool:
        """Messages wait and no consumer is attached to take them."""
        return self.ready > 0 and self.consumers == 0


async def live_state(ops: DeadLetterOps, management_url: str | None) -> list[ConsumerState]:
    """Each consumer's work queue and dead-letter queue. Depths and consumers come from the
    broker's answers to passive declares (exact now; the management API's figures lag by
    its statistics interval, 5 s); in flight and rates from the management API when its URL
    is given, else they are unknown (None)."""
    stats = await _management_stats(ops.config.amqp_url, management_url) if management_url else {}
    timeout = ops.config.connect_timeout
    connection = await ops.connect("live")
    try:
        states = []
        for service, names in CONSUMERS.items():
            ready, consumers = await broker.counts(connection, names.queue, timeout)
            dead, _ = await broker.counts(connection, names.dead_letter_queue, timeout)
            known = names.queue in stats
            work = stats.get(names.queue, {})
            rates = work.get("message_stats") or {}
            states.append(
                ConsumerState(
                    service=service,
                    queue=names.queue,
                    ready=ready,
                    in_flight=work.get("messages_unacknowledged", 0) if known else None,
                    consumers=consumers,
                    dead_letters=dead,
                    rate_in=(rates.get("publish_details") or {}).get("rate", 0.0)
                    if known
                    else None,
                    rate_out=(rates.get("ack_details") or {}).get("rate", 0.0) if known else None,
                )
            )
        return states
    finally:
        await close_quietly(connection)


async def _management_stats(amqp_url: str, management_url: str) -> dict[str, dict[str, Any]]:
    """The vhost's queues as the management API reports them, by name."""
    vhost = unquote(urlsplit(amqp_url).path.lstrip("/")) or "/"
    parts = urlsplit(management_url)
    auth = (unquote(parts.username or ""), unquote(parts.password or ""))
    base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}"
    url = f"{base}/api/queues/{quote(vhost, safe='')}"
    try:
        async with httpx.AsyncClient(auth=auth, timeout=5) as client:
            answer = await client.get(url)
            answer.raise_for_status()
    except (TimeoutError, httpx.HTTPError) as exc:
        raise BrokerUnreachable(f"the management API did not answer: {exc!r}") from exc
    return {q["name"]: q for q in answer.json()}
