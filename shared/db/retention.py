"""Retention: a periodic job that deletes rows past their use, in the service that owns them.

What goes, by default (each age a setting):

* outbox rows already published (``<svc>.outbox``): 7 days, kept for inspection only;
* processed-event records (``<svc>.processed_events``): 30 days. A record must outlive every
  copy of its event that can still arrive, or that copy acts again (a second email). Copies
  come from the broker (unacked deliveries: seconds), the retry queues (at most
  ``MAX_ATTEMPTS * RETRY_MAX_DELAY``), the outbox relay re-sending a row whose confirm
  was lost (as long as a broker outage lasts) and dead-letter replays of a copy that failed
  (whenever an operator replays). Hence a floor of 7 days, and never less than the retry
  span: :data:`PROCESSED_EVENTS_MIN_AGE`, refused at start below it;
* idempotency keys (``booking.idempotency_keys``): 1 day, as long as a client may retry;
* emails sent (``email.emails``: the guest's address and name): 30 days.

Every pass deletes in batches of ``RETENTION_BATCH_SIZE`` rows, each batch a statement of its
own (its own short transaction), rows locked by someone else skipped (``SKIP LOCKED``), so the
job never holds locks for long nor waits on a busy row; replicas running it at once share the
work. An index on each age column keeps a batch from scanning the table.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from shared.db.pool import UNAVAILABLE_ERRORS, acquire
from shared.errors import DatabaseUnavailable
from shared.waiting import first_of

log = logging.getLogger(__name__)

PROCESSED_EVENTS_MIN_AGE = timedelta(days=7)
FAILURES: tuple[type[BaseException], ...] = (
    DatabaseUnavailable,
    asyncpg.PostgresError,
    *UNAVAILABLE_ERRORS,
)


@dataclass(frozen=True)
class Rule:
    """Rows of ``table`` (schema-qualified) whose ``older`` condition holds for ``$1`` (the
    age, an interval) are deleted, found by their primary key ``key``."""

    table: str
    key: str
    older: str
    max_age: timedelta

    def batch_delete(self) -> str:
        return (
            f"DELETE FROM {self.table} WHERE {self.key} IN ("
            f"SELECT {self.key} FROM {self.table} WHERE {self.older} "
            "LIMIT $2 FOR UPDATE SKIP LOCKED)"
        )


def sent_outbox(schema: str, max_age: timedelta) -> Rule:
    # Unsent rows never go, however old: they are events still owed to the broker.
    older = "published_at IS NOT NULL AND published_at < now() - $1::interval"
    return Rule(f'"{schema}".outbox', "id", older, max_age)


def processed_events(schema: str, max_age: timedelta) -> Rule:
    older = "processed_at < now() - $1::interval"
    return Rule(f'"{schema}".processed_events', "event_id", older, max_age)


def created_before(table: str, key: str, max_age: timedelta) -> Rule:
    return Rule(table, key, "created_at < now() - $1::interval", max_age)


class RetentionJob:
    def __init__(
        self,
        pool: asyncpg.Pool,
        rules: Sequence[Rule],
        *,
        interval: float,
        batch_size: int = 1000,
        acquire_timeout: float = 5.0,
    ) -> None:
        self._pool = pool
        self.rules = tuple(rules)
        self._interval = interval
        self._batch_size = batch_size
        self._acquire_timeout = acquire_timeout

    async def run(self, stop: asyncio.Event) -> None:
        """A pass now and then every ``interval`` seconds until ``stop`` (never, with an
        interval of 0). A failed pass is logged and tried again at the next interval."""
        if self._interval <= 0 or not self.rules:
            return
        while not stop.is_set():
            try:
                await self.run_once(stop)
            except FAILURES as exc:
                log.warning("retention: pass failed (%r); next in %.0fs", exc, self._interval)
            except Exception:  # unforeseen: said with its traceback, never a silent end
                log.exception("retention: pass failed; next in %.0fs", self._interval)
            await first_of(stop, timeout=self._interval)

    async def run_once(self, stop: asyncio.Event | None = None) -> dict[str, int]:
        """One pass over every rule: the rows deleted per table."""
        deleted: dict[str, int] = {}
        for rule in self.rules:
            deleted[rule.table] = await self._purge(rule, stop)
            if deleted[rule.table]:
                log.info(
                    "retention: deleted %d rows of %s older than %s",
                    deleted[rule.table],
                    rule.table,
                    rule.max_age,
                )
        return deleted

    async def _purge(self, rule: Rule, stop: asyncio.Event | None) -> int:
        statement, total = rule.batch_delete(), 0
        while stop is None or not stop.is_set():
            async with acquire(self._pool, self._acquire_timeout) as conn:
                status = await conn.execute(statement, rule.max_age, self._batch_size)
            count = int(status.rsplit(" ", 1)[-1])  # "DELETE <n>"
            total += count
            if count < self._batch_size:
                break
            await asyncio.sleep(0)  # between batches, let others have the loop
        return total
