"""The outbox's backlog as metrics (``outbox_backlog``, ``outbox_oldest_unsent_age_seconds``),
read from the table on each scrape with a bounded query."""

from __future__ import annotations

import logging
import math

import asyncpg

from shared.db.pool import acquire
from shared.observability.metrics import Metrics

log = logging.getLogger(__name__)


class OutboxProbe:
    """Reads an outbox's backlog on scrape. A failure or timeout sets the gauges to NaN
    rather than leave a stale figure that looks healthy."""

    def __init__(self, pool: asyncpg.Pool, schema: str, *, timeout: float = 2.0) -> None:
        self._pool = pool
        self._schema = schema
        self._timeout = timeout

    async def __call__(self, metrics: Metrics) -> None:
        backlog, age = math.nan, math.nan
        try:
            async with acquire(self._pool, self._timeout) as conn:
                # Served by the partial index on unpublished rows; the timeout bounds it
                # even when the backlog is huge.
                row = await conn.fetchrow(
                    f"""SELECT count(*) AS backlog,
                               coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age
                        FROM "{self._schema}".outbox WHERE published_at IS NULL""",
                    timeout=self._timeout,
                )
            assert row is not None
            backlog, age = float(row["backlog"]), float(row["age"])
        except Exception as exc:  # a scrape must answer even when the database does not
            log.warning("outbox %s: backlog unknown: %r", self._schema, exc)
        finally:  # also when the scrape's own timeout cancels us: NaN, never a stale figure
            metrics.outbox_backlog.labels(outbox=self._schema).set(backlog)
            metrics.outbox_oldest_age.labels(outbox=self._schema).set(age)
