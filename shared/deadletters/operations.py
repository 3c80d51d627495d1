"""List, show, replay and purge dead-letter queues: the one implementation behind both the
``bookingctl`` CLI and the booking service's admin API.

The guarantee: a message leaves a dead-letter queue only after the broker has confirmed its
copy on the target queue. Copies are published (pipelined, in batches) on a confirm channel
of their own connection; only then is each original acked on the consuming connection. If
this process dies anywhere in between, the broker returns every unacked original to the
dead-letter queue: a message is in the dead-letter queue, the target queue, or both (a
duplicate the consumers' idempotency record absorbs), never in neither.

The target is the consumer's own work queue, reached through that consumer's retry
exchange (which routes the work queue's name to it), so a replayed event never goes back
through the fanout to the other consumers, and the operator needs no right on the default
exchange, which reaches every queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aio_pika.abc import AbstractConnection

from shared.deadletters import broker
from shared.deadletters.audit import AuditStore
from shared.deadletters.errors import BrokerUnreachable, DlqError, InvalidRequest, UnknownQueue
from shared.deadletters.model import AuditEntry, DeadLetter, Filters, QueueInfo, Summary
from shared.deadletters.sweep import IN_FLIGHT, Action, Batch, Pacer, Progress, Sweep
from shared.errors import MessagingError
from shared.messaging import retry
from shared.messaging.connection import CONNECTION_ERRORS, close_quietly, connect
from shared.messaging.envelope import copy_message
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import (
    CONSUMERS,
    ConsumerTopology,
    resolve_dead_letter_queue,
)

log = logging.getLogger(__name__)
MAX_SHOW = 1000


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


class DeadLetterOps:
    def __init__(self, config: OpsConfig, audit: AuditStore | None = None) -> None:
        self.config = config
        self.audit = audit

    async def connect(self, purpose: str) -> AbstractConnection:
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
        connection = await self.connect("list")
        try:
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
        except CONNECTION_ERRORS as exc:
            raise BrokerUnreachable(f"listing dead-letter queues failed: {exc!r}") from exc
        finally:
            await close_quietly(connection)

    async def show(self, queue: str, limit: int = 20) -> list[DeadLetter]:
        """The first ``limit`` messages, all left in the queue (returned to its head)."""
        if not 1 <= limit <= MAX_SHOW:
            raise InvalidRequest(f"the limit must be between 1 and {MAX_SHOW}")
        names = resolve(queue)
        connection = await self.connect("show")
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
        sent: list[str] | None = None,
        body: bytes | None = None,
    ) -> Summary:
        """Send the matching messages back to their consumer's work queue, each acked in the
        dead-letter queue only after its copy is confirmed. Non-matching ones stay. The ids
        of the confirmed copies are appended to ``sent`` (a canary retry watches them);
        ``body`` replaces the copies' body (an edited message, editing.py)."""
        filters.check()
        names = resolve(queue)
        if dry_run:
            action = Action("replayed", keep=True)
            return await self._audited("replay", names, filters, actor, action, progress)
        pacer = Pacer(rate)
        publisher = ConfirmingPublisher(
            self.config.amqp_url,
            name="bookingctl-publisher",
            connect_timeout=self.config.connect_timeout,
            publish_timeout=self.config.publish_timeout,
            # Passive: the operator may publish to the target queue, never declare it.
            declare=lambda channel: broker.require_queue(channel, names.queue),
        )

        async def send(batch: Batch) -> Sequence[BaseException | None]:
            await pacer.wait(len(batch))
            copies = [copy_message(m, retry.replay_headers(dict(m.headers or {}))) for m in batch]
            if body is not None:
                for copy in copies:
                    copy.body = body
            try:
                results = await publisher.publish_many(
                    copies, exchange=names.retry_exchange, routing_key=names.queue
                )
            except MessagingError as exc:
                return [exc] * len(batch)
            if sent is not None:
                confirmed = zip(batch, results, strict=True)
                sent.extend(m.message_id for m, error in confirmed if not error and m.message_id)
            return results

        try:
            return await self._audited(
                "replay",
                names,
                filters,
                actor,
                Action("replayed", send=send),
                progress,
                self._batch_size(rate),
            )
        finally:
            await publisher.close()

    async def purge(
        self, queue: str, filters: Filters, *, actor: str, progress: Progress | None = None
    ) -> Summary:
        """Discard the matching messages."""
        filters.check()
        names = resolve(queue)
        return await self._audited("purge", names, filters, actor, Action("purged"), progress)

    async def history(self, limit: int = 50, queue: str | None = None) -> list[AuditEntry]:
        if self.audit is None:
            raise InvalidRequest("no audit store configured")
        dead_letter_queue = resolve(queue).dead_letter_queue if queue else None
        return await self.audit.history(limit, dead_letter_queue)

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
        action: Action,
        progress: Progress | None,
        batch_size: int | None = None,
    ) -> Summary:
        """Record the operation, sweep the queue, record the outcome."""
        summary = Summary(operation=operation, queue=names.dead_letter_queue, dry_run=action.keep)
        if self.audit is not None:
            summary.audit_id = await self.audit.started(
                actor=actor,
                operation=operation,
                queue=names.dead_letter_queue,
                filters=filters,
                dry_run=action.keep,
            )
        batch_size = batch_size or self.config.batch_size
        try:
            connection = await self.connect(operation)
            try:
                async with broker.scanning(
                    connection,
                    names.dead_letter_queue,
                    prefetch=(IN_FLIGHT + 1) * batch_size,
                    idle_timeout=self.config.idle_timeout,
                    timeout=self.config.connect_timeout,
                ) as scan:
                    sweep = Sweep(scan, action, summary)
                    await sweep.run(filters, batch_size, progress)
                if sweep.stalled:
                    await self._check_stall(connection, names, summary)
            finally:
                await close_quietly(connection)
        except DlqError as exc:
            summary.error = str(exc)
        finally:
            # Also after an interruption, so a run never stays "running" in the audit.
            await asyncio.shield(self._record_outcome(summary))
        return summary

    async def _check_stall(
        self, connection: AbstractConnection, names: ConsumerTopology, summary: Summary
    ) -> None:
        """After a pause in deliveries: a queue holding more than what the pass put back
        means the broker stalled rather than another replay taking the rest."""
        left = await broker.depth(connection, names.dead_letter_queue, self.config.connect_timeout)
        if left > summary.skipped + summary.failed:
            summary.error = (
                f"stopped after {summary.seen} of {summary.total}: no delivery for "
                f"{self.config.idle_timeout:g}s while {left} message(s) remain; run it again"
            )

    async def _record_outcome(self, summary: Summary) -> None:
        """The messages have moved already: a failure to record that is a warning, never
        a reason to report the operation itself as failed."""
        if self.audit is None or summary.audit_id is None:
            return
        try:
            await self.audit.finished(summary.audit_id, summary)
        except DlqError as exc:
            log.warning("audit row %s not completed: %s", summary.audit_id, exc)


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
