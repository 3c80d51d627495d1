"""`python -m bench.consumers VARIANT QUEUE COUNT`: drain COUNT messages from QUEUE with a
no-op handler and print ``{"rate": messages/s, "seconds": ...}`` (first delivery to last ack).

Variants, all with prefetch 100 on the same quorum queue:

* ``raw``: a bare aio-pika consume-and-ack loop (the ceiling for one Python process);
* ``faststream``: a FastStream subscriber, as its docs write one;
* ``runtime``: the project's consumer runtime without the idempotency record (the handler is
  called without a database transaction; decoding, validation and acking as usual);
* ``runtime-record``: the runtime exactly as the fulfilment consumers run it (idempotency
  record and progress report committed per message, the relay publishing the reports; the
  clock stops when the last report is sent, not at the last ack);
* ``runtime-batched``: the same with ``BATCH_SIZE`` = prefetch, as the booking service runs
  its report consumer (the records of the deliveries in hand share one transaction).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractIncomingMessage

from bench.config import ROOT
from shared import building
from shared.db.pool import Connection
from shared.events import BookingConfirmed, Event
from shared.messaging.consumer import Consumer
from shared.messaging.handlers import Emitted, route
from shared.observability.metrics import Metrics
from shared.process import Parts
from shared.settings import ConsumerSettings

PREFETCH = 100
LIMIT = 300.0  # seconds


class Clock:
    def __init__(self, count: int) -> None:
        self.count, self.seen = count, 0
        self.first = self.last = self.cpu = self.cpu_last = 0.0
        self.done = asyncio.Event()

    def tick(self) -> None:
        if self.seen == 0:
            self.first, self.cpu = time.perf_counter(), time.process_time()
        self.seen += 1
        if self.seen >= self.count:
            self.done.set()

    def finished(self) -> None:
        """The last ack is written: the measurement ends here, before any shutdown."""
        self.last, self.cpu_last = time.perf_counter(), time.process_time()

    def result(self) -> dict[str, float]:
        seconds = self.last - self.first
        # CPU of this process per message: what the runtime itself costs, whatever else
        # the machine runs (the rate moves with every other process on it).
        cpu_us = (self.cpu_last - self.cpu) / self.count * 1e6
        return {"rate": self.count / seconds, "seconds": seconds, "cpu_us": cpu_us}


async def raw(url: str, queue_name: str, clock: Clock) -> None:
    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=PREFETCH)
    queue = await channel.get_queue(queue_name, ensure=False)

    async def on_message(message: AbstractIncomingMessage) -> None:
        await message.ack()
        clock.tick()

    await queue.consume(on_message)
    await asyncio.wait_for(clock.done.wait(), LIMIT)
    clock.finished()
    await connection.close()


async def faststream(url: str, queue_name: str, clock: Clock) -> None:
    from faststream.rabbit import Channel, RabbitBroker, RabbitQueue

    broker = RabbitBroker(url, logger=None)

    @broker.subscriber(
        RabbitQueue(queue_name, declare=False), channel=Channel(prefetch_count=PREFETCH)
    )
    async def handle(body: dict[str, Any]) -> None:
        clock.tick()

    await broker.start()
    await asyncio.wait_for(clock.done.wait(), LIMIT)
    await asyncio.sleep(0)  # its ack follows the handler's return
    clock.finished()
    await broker.stop()


async def _unsent(db: asyncpg.Pool, schema: str) -> int:
    query = f'SELECT count(*) FROM "{schema}".outbox WHERE published_at IS NULL'
    return int(await db.fetchval(query))


class NoRecordConsumer(Consumer):
    """The runtime with the per-message database transaction left out."""

    async def _handle_once(self, event: Event, attempts: int) -> None:
        await self._handlers[event.event_type].handle(event, None, None)  # type: ignore[arg-type]


async def runtime(url: str, service: str, clock: Clock, *, record: bool, batch: int = 1) -> None:
    async def noop(event: BookingConfirmed, tx: Connection) -> Emitted:
        clock.tick()
        return None

    settings = ConsumerSettings(
        database_url=os.environ["DATABASE_URL"],
        amqp_url=url,
        prefetch=PREFETCH,
        batch_size=batch,
        log_level="WARNING",
    )
    handlers = dict([route(BookingConfirmed, noop)])
    migrations = ROOT / "services" / service / "migrations"
    # Composed from the same parts as a service (shared/building.py), with the runtime's own
    # consumer or, without the record, the one that skips its transaction.
    parts = Parts()
    async with parts.building():
        db = await building.schema_pool(parts, settings, service, migrations)
        metrics = Metrics()
        sender = building.publisher(parts, settings, service)
        outbox = building.relay(parts, settings, service, db, sender, metrics)
        config = building.consumer_config(service, settings)
        if record:
            consumer = building.consumer(parts, config, handlers, db, sender, outbox, metrics)
        else:
            consumer = NoRecordConsumer(config, handlers, db, sender, metrics=metrics)
            parts.runs("consumer", consumer.run)
    stop = asyncio.Event()
    task = asyncio.create_task(parts.run(stop))
    try:
        await asyncio.wait_for(clock.done.wait(), LIMIT)
        # the last acks leave right after the handler returns
        while consumer.stats["acked"] < clock.count:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        # A recorded message's work includes its progress report reaching the broker: the
        # relay may still be publishing them after the last ack. Stopping there would count
        # only part of the work, and leave the rest to the next variant's relay (which
        # then paid for it: the no-record runtime measured slow after a record variant).
        while await _unsent(db, service):  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        clock.finished()
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await parts.close()


def main() -> None:
    variant, queue, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    url = os.environ["AMQP_URL"]
    clock = Clock(count)
    if variant == "raw":
        asyncio.run(raw(url, queue, clock))
    elif variant == "faststream":
        asyncio.run(faststream(url, queue, clock))
    else:
        service = queue.split(".", 1)[0]
        record = variant in ("runtime-record", "runtime-batched")
        batch = PREFETCH if variant == "runtime-batched" else 1
        asyncio.run(runtime(url, service, clock, record=record, batch=batch))
    print(json.dumps(clock.result()))


if __name__ == "__main__":
    main()
