"""List, show, replay and purge dead-letter queues: the one implementation behind both the
``bookingctl`` CLI and the booking service's admin API.

The guarantee: a message leaves a dead-letter queue only after the broker has confirmed its
copy on the target queue. Copies are published (pipelined, in batches) on a confirm channel
of their own connection; only then is each original acked on the consuming connection. If
this process dies anywhere in between, the broker returns every unacked original to the
dead-letter queue: a message is in the dead-letter queue, the target queue, or both (a
duplicate the consumers' idempotency record absorbs), never in neither.

The target is the consumer's own work queue, reached through the default exchange, so a
replayed event never goes back through the fanout to the other consumers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aio_pika.abc import AbstractConnection, AbstractIncomingMessage

from services.dlq import broker
from services.dlq.audit import AuditStore
from services.dlq.errors import BrokerUnreachable, DlqError, InvalidRequest, UnknownQueue
from services.dlq.model import AuditEntry, DeadLetter, Filters, QueueInfo, Summary
from shared.errors import MessagingError
from shared.messaging import retry
from shared.messaging.connection import close_quietly, connect
from shared.messaging.envelope import copy_message
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import (
    CONSUMERS,
    ConsumerTopology,
    declare_all,
    declare_consumer,
    resolve_dead_letter_queue,
)

MAX_SHOW = 1000
Progress = Callable[[Summary], None]
# What a sweep does with a batch of matching messages; it updates the summary itself.
Action = Callable[[broker.Scan, list[AbstractIncomingMessage], Summary], Coroutine[Any, Any, None]]


def resolve(queue: str) -> ConsumerTopology:
    """``email`` or ``email.dlq`` -> the email consumer's names."""
    try:
        dead_letter_queue = resolve_dead_letter_queue(queue)
    except ValueError as exc:
        raise UnknownQueue(str(exc)) from exc
    return next(n for n in CONSUMERS.values() if n.dead_letter_queue == dead_letter_queue)


@dataclass(frozen=True)
class OpsConfig:
    amqp_url: str
    connect_timeout: float = 5.0
    publish_timeout: float = 5.0
    batch_size: int = 500
    idle_timeout: float = 2.0


class Pacer:
    """Bounds the average rate: the n-th message goes no earlier than start + n / rate."""

    def __init__(self, rate: float | None) -> None:
        if rate is not None and rate <= 0:
            raise InvalidRequest(f"--rate must be positive, not {rate}")
        self.rate = rate
        self._start: float | None = None
        self._sent = 0

    async def wait(self, count: int) -> None:
        if self.rate is None:
            return
        now = time.monotonic()
        if self._start is None:
            self._start = now
        delay = self._start + self._sent / self.rate - now
        if delay > 0:
            await asyncio.sleep(delay)
        self._sent += count


class DeadLetterOps:
    def __init__(self, config: OpsConfig, audit: AuditStore | None = None) -> None:
        self.config = config
        self.audit = audit

    async def _connect(self, purpose: str) -> AbstractConnection:
        try:
            return await connect(
                self.config.amqp_url,
                name=f"bookingctl-{purpose}",
                timeout=self.config.connect_timeout,
            )
        except MessagingError as exc:
            raise BrokerUnreachable(str(exc)) from exc

    async def list_queues(self, now: datetime | None = None) -> list[QueueInfo]:
        """Each consumer's dead-letter queue: depth, and the age of the message at its head."""
        now = now or datetime.now(UTC)
        timeout = self.config.connect_timeout
        connection = await self._connect("list")
        try:
            channel = await asyncio.wait_for(connection.channel(), timeout)
            await asyncio.wait_for(declare_all(channel), timeout)
            infos = []
            for service, names in CONSUMERS.items():
                count = await broker.depth(connection, names.dead_letter_queue, timeout)
                head = await broker.peek(connection, names.dead_letter_queue, timeout)
                since = DeadLetter.of(head).last_failure_at if head is not None else None
                infos.append(
                    QueueInfo(
                        service=service,
                        queue=names.dead_letter_queue,
                        target_queue=names.queue,
                        messages=count,
                        oldest_age_seconds=(now - since).total_seconds() if since else None,
                    )
                )
            return infos
        except MessagingError as exc:
            raise BrokerUnreachable(str(exc)) from exc
        except (OSError, TimeoutError) as exc:
            raise BrokerUnreachable(f"listing dead-letter queues failed: {exc!r}") from exc
        finally:
            await close_quietly(connection)

    async def show(self, queue: str, limit: int = 20) -> list[DeadLetter]:
        """The first ``limit`` messages, all left in the queue (returned to its head)."""
        if not 1 <= limit <= MAX_SHOW:
            raise InvalidRequest(f"--limit must be between 1 and {MAX_SHOW}")
        names = resolve(queue)
        connection = await self._connect("show")
        shown: list[DeadLetter] = []
        try:
            async with broker.scanning(
                connection,
                names.dead_letter_queue,
                prefetch=limit,
                idle_timeout=self.config.idle_timeout,
                timeout=self.config.connect_timeout,
            ) as scan:
                while len(shown) < min(limit, scan.ready):
                    message = await scan.next()
                    if message is None:
                        break
                    shown.append(DeadLetter.of(message))
        finally:
            await close_quietly(connection)
        return shown

    async def replay(
        self,
        queue: str,
        filters: Filters,
        *,
        actor: str,
        rate: float | None = None,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> Summary:
        """Send the matching messages back to their consumer's work queue, each acked in the
        dead-letter queue only after its copy is confirmed. Non-matching ones stay."""
        filters.check()
        names = resolve(queue)
        pacer = Pacer(rate)
        if dry_run:
            return await self._audited(
                "replay", names, filters, actor, True, self._would_replay, progress
            )
        publisher = ConfirmingPublisher(
            self.config.amqp_url,
            name="bookingctl-publisher",
            connect_timeout=self.config.connect_timeout,
            publish_timeout=self.config.publish_timeout,
            declare=lambda channel: declare_consumer(channel, names),
        )

        async def send(scan: broker.Scan, batch: list[AbstractIncomingMessage], s: Summary) -> None:
            await pacer.wait(len(batch))
            copies = [copy_message(m, retry.replay_headers(dict(m.headers or {}))) for m in batch]
            try:
                results = await publisher.publish_many(copies, exchange="", routing_key=names.queue)
            except MessagingError as exc:
                results = [exc] * len(batch)
            confirmed = [m for m, error in zip(batch, results, strict=True) if error is None]
            for message, error in zip(batch, results, strict=True):
                if error is not None:
                    await scan.requeue(message)
                    s.failed += 1
                    s.error = s.error or str(error)
            if confirmed:
                # Everything unsettled up to the last confirmed one is this batch's confirmed
                # messages: earlier batches are settled, the failed ones were just requeued.
                await scan.ack(confirmed[-1], through=True)
                s.replayed += len(confirmed)

        try:
            return await self._audited(
                "replay", names, filters, actor, False, send, progress, self._batch_size(rate)
            )
        finally:
            await publisher.close()

    async def purge(
        self, queue: str, filters: Filters, *, actor: str, progress: Progress | None = None
    ) -> Summary:
        """Discard the matching messages (all of them, at once, for ``--all`` alone)."""
        filters.check()
        names = resolve(queue)

        async def discard(
            scan: broker.Scan, batch: list[AbstractIncomingMessage], s: Summary
        ) -> None:
            await scan.ack(batch[-1], through=True)
            s.purged += len(batch)

        return await self._audited("purge", names, filters, actor, False, discard, progress)

    async def history(self, limit: int = 50, queue: str | None = None) -> list[AuditEntry]:
        if self.audit is None:
            raise InvalidRequest("no audit store configured")
        dead_letter_queue = resolve(queue).dead_letter_queue if queue else None
        return await self.audit.history(limit, dead_letter_queue)

    @staticmethod
    async def _would_replay(
        scan: broker.Scan, batch: list[AbstractIncomingMessage], s: Summary
    ) -> None:
        await scan.requeue(batch[-1], through=True)
        s.replayed += len(batch)

    def _batch_size(self, rate: float | None) -> int:
        # A rated replay publishes in bursts of at most ~1/10 s of its rate.
        if rate is None:
            return self.config.batch_size
        return max(1, min(self.config.batch_size, int(rate / 10)))

    async def _audited(
        self,
        operation: str,
        names: ConsumerTopology,
        filters: Filters,
        actor: str,
        dry_run: bool,
        action: Action,
        progress: Progress | None,
        batch_size: int | None = None,
    ) -> Summary:
        summary = Summary(operation=operation, queue=names.dead_letter_queue, dry_run=dry_run)
        if self.audit is not None:
            summary.audit_id = await self.audit.started(
                actor=actor,
                operation=operation,
                queue=names.dead_letter_queue,
                filters=filters,
                dry_run=dry_run,
            )
        try:
            await self._sweep(
                names, filters, action, summary, progress, batch_size or self.config.batch_size
            )
        except DlqError as exc:
            summary.error = str(exc)
        if self.audit is not None and summary.audit_id is not None:
            await self.audit.finished(summary.audit_id, summary)
        return summary

    async def _sweep(
        self,
        names: ConsumerTopology,
        filters: Filters,
        action: Action,
        summary: Summary,
        progress: Progress | None,
        batch_size: int,
    ) -> None:
        """Stream through the messages ready at the start, with at most two batches in hand:
        matching ones go to ``action`` batch by batch, the others back to the queue."""
        now = datetime.now(UTC)
        connection = await self._connect(summary.operation)
        try:
            async with broker.scanning(
                connection,
                names.dead_letter_queue,
                prefetch=2 * batch_size,
                idle_timeout=self.config.idle_timeout,
                timeout=self.config.connect_timeout,
            ) as scan:
                summary.total = scan.ready
                flushing = _Flusher(scan, action, summary)
                batch: list[AbstractIncomingMessage] = []
                selected = 0
                while summary.seen < summary.total:
                    if filters.limit is not None and selected >= filters.limit:
                        break
                    message = await scan.next()
                    if message is None:
                        break  # the rest was taken by someone else (another replay)
                    summary.seen += 1
                    if not filters.matches(DeadLetter.of(message), now):
                        await scan.requeue(message)
                        summary.skipped += 1
                    else:
                        batch.append(message)
                        selected += 1
                    if len(batch) >= batch_size:
                        await flushing.start(batch)
                        batch = []
                        if summary.failed:
                            break  # the broker is in trouble: stop, and say so
                    if progress is not None and summary.seen % 100 == 0:
                        progress(summary)
                await flushing.start(batch)
                await flushing.wait()
                if progress is not None:
                    progress(summary)
        finally:
            await close_quietly(connection)


class _Flusher:
    """Runs the action on one batch in the background while the next batch is collected.
    A batch starts only after the previous one is settled, which is what makes settling a
    whole batch with one multiple-ack safe."""

    def __init__(self, scan: broker.Scan, action: Action, summary: Summary) -> None:
        self._scan, self._action, self._summary = scan, action, summary
        self._task: asyncio.Task[None] | None = None

    async def wait(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await task

    async def start(self, batch: list[AbstractIncomingMessage]) -> None:
        await self.wait()
        if batch:
            self._task = asyncio.create_task(self._action(self._scan, batch, self._summary))


async def replay(
    amqp_url: str,
    queue: str,
    filters: Filters | None = None,
    *,
    audit: AuditStore | None = None,
    actor: str = "python",
    rate: float | None = None,
    dry_run: bool = False,
    batch_size: int = 500,
    progress: Progress | None = None,
) -> Summary:
    """Replay a dead-letter queue from Python (benchmarks, scripts): every message unless
    ``filters`` narrow it. Audited only when an ``audit`` store is given."""
    ops = DeadLetterOps(OpsConfig(amqp_url=amqp_url, batch_size=batch_size), audit)
    return await ops.replay(
        queue,
        filters or Filters(select_all=True),
        actor=actor,
        rate=rate,
        dry_run=dry_run,
        progress=progress,
    )
