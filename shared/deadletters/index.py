"""The dead-letter console's index in PostgreSQL (``ops.dead_letters``): a derived copy.

The dead-letter queues on the broker are the truth. :meth:`DeadLetterIndex.replace` swaps a
queue's rows for what a sync just read there (``reading.read_queue``); retries and purges
act on the broker's messages (by fingerprint or id), never on these rows, and the queue is
synced again after each. So a stale index can show too much or too little for a moment, but
can never make a message move twice or vanish: that is decided by the broker's acks.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from shared.db.pool import Connection, acquire
from shared.deadletters.audit import _ERRORS, SCHEMA, AuditStore
from shared.deadletters.errors import AuditUnavailable, InvalidRequest
from shared.deadletters.fingerprint import normalise
from shared.deadletters.model import DeadLetter
from shared.deadletters.pages import Group, GroupQuery, Indexed, MessagePage, MessageQuery, Parking

COLUMNS = (
    "queue, message_id, fingerprint, consumer, event_type, event_version, exception_type, "
    "frame, reason, reason_pattern, exception, booking_id, attempts, replay_count, "
    "first_failure_at, last_failure_at, headers, body"
)


@dataclass(frozen=True)
class Parked:
    """One message as a sync read it from a dead-letter queue."""

    queue: str
    dead: DeadLetter
    headers: dict[str, Any]
    body: bytes

    def row(self) -> tuple[Any, ...]:
        d = self.dead
        text = (d.exception or d.reason or "").split(": ", 1)[-1]
        return (
            self.queue,
            d.message_id,
            d.fingerprint,
            d.consumer,
            d.event_type,
            d.event_version,
            d.exception_type,
            d.frame,
            d.reason,
            normalise(text),
            d.exception,
            d.booking_id,
            d.attempts,
            d.replay_count,
            d.first_failure_at,
            d.last_failure_at or datetime.now(UTC),
            json.dumps(self.headers),
            self.body,
        )


class DeadLetterIndex:
    def __init__(self, pool: asyncpg.Pool, audit: AuditStore, acquire_timeout: float = 5.0) -> None:
        self._pool, self._audit, self._timeout = pool, audit, acquire_timeout

    async def replace(self, queue: str, batches: AsyncIterable[list[Parked]]) -> int:
        """Swap ``queue``'s rows for the batches (one transaction: readers see the old rows
        or the new, never half), and remember each parking; the number of rows written."""
        written = 0
        try:
            await self._audit.ready()
            async with acquire(self._pool, self._timeout) as conn, conn.transaction():
                await conn.execute(f"DELETE FROM {SCHEMA}.dead_letters WHERE queue = $1", queue)
                async for batch in batches:
                    rows = [p.row() for p in batch]
                    await conn.copy_records_to_table(
                        "dead_letters", schema_name=SCHEMA, records=rows, columns=_names()
                    )
                    await _remember_parkings(conn, batch)
                    written += len(rows)
        except _ERRORS as exc:
            raise AuditUnavailable(f"cannot write the dead-letter index: {exc}") from exc
        return written

    async def counts(self) -> dict[str, int]:
        rows = await self._fetch(
            f"SELECT queue, count(*) AS n FROM {SCHEMA}.dead_letters GROUP BY queue"
        )
        return {r["queue"]: r["n"] for r in rows}

    async def groups(self, query: GroupQuery) -> list[Group]:
        rows = await self._fetch(*query.sql())
        trends = await self._trends([r["fingerprint"] for r in rows], query.now)
        return [Group.of(r, trends.get(r["fingerprint"], [])) for r in rows]

    async def group(self, fingerprint: str) -> Group | None:
        found = await self.groups(GroupQuery(fingerprint=fingerprint, include_hidden=True))
        return found[0] if found else None

    async def messages(self, query: MessageQuery) -> MessagePage:
        rows = await self._fetch(*query.sql())
        return MessagePage.of(rows, query.limit)

    async def message(self, row_id: int) -> Indexed | None:
        rows = await self._fetch(f"SELECT * FROM {SCHEMA}.dead_letters WHERE id = $1", row_id)
        return Indexed.of(rows[0]) if rows else None

    async def present(self, queue: str, ids: list[str]) -> list[str]:
        """Which of ``ids`` the index holds for ``queue``."""
        rows = await self._fetch(
            f"SELECT DISTINCT message_id FROM {SCHEMA}.dead_letters "
            "WHERE queue = $1 AND message_id = ANY($2)",
            queue,
            ids,
        )
        return sorted(r["message_id"] for r in rows)

    async def parkings(self, message_id: str) -> list[Parking]:
        rows = await self._fetch(
            f"SELECT * FROM {SCHEMA}.dead_letter_parkings WHERE message_id = $1 "
            "ORDER BY last_failure_at",
            message_id,
        )
        return [Parking.model_validate(dict(r)) for r in rows]

    async def set_state(
        self, fingerprint: str, state: str | None, actor: str, until: datetime | None = None
    ) -> None:
        """Mute (until a time), archive, or restore (``state`` None) a group."""
        if state not in (None, "muted", "archived"):
            raise InvalidRequest(f"a group can be muted or archived, not {state!r}")
        if state is None:
            sql = f"DELETE FROM {SCHEMA}.dead_letter_groups WHERE fingerprint = $1"
            await self._execute(sql, fingerprint)
            return
        await self._execute(
            f"INSERT INTO {SCHEMA}.dead_letter_groups (fingerprint, state, until, actor) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (fingerprint) DO UPDATE SET "
            "state = excluded.state, until = excluded.until, actor = excluded.actor, at = now()",
            fingerprint,
            state,
            until,
            actor,
        )

    async def _trends(self, fingerprints: list[str], now: datetime | None) -> dict[str, list[int]]:
        """Failures per hour over the last 24 hours, oldest first, by last failure time."""
        if not fingerprints:
            return {}
        rows = await self._fetch(
            "SELECT fingerprint, 23 - floor(extract(epoch FROM coalesce($2, now()) "
            "- last_failure_at) / 3600)::int AS hour, count(*) AS n "
            f"FROM {SCHEMA}.dead_letters WHERE fingerprint = ANY($1) "
            "AND last_failure_at > coalesce($2, now()) - interval '24 hours' GROUP BY 1, 2",
            fingerprints,
            now,
        )
        trends = {f: [0] * 24 for f in fingerprints}
        for r in rows:
            if 0 <= r["hour"] < 24:
                trends[r["fingerprint"]][r["hour"]] = r["n"]
        return trends

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        try:
            await self._audit.ready()
            async with acquire(self._pool, self._timeout) as conn:
                return list(await conn.fetch(sql, *args))
        except _ERRORS as exc:
            raise AuditUnavailable(f"cannot read the dead-letter index: {exc}") from exc

    async def _execute(self, sql: str, *args: Any) -> None:
        try:
            await self._audit.ready()
            async with acquire(self._pool, self._timeout) as conn:
                await conn.execute(sql, *args)
        except _ERRORS as exc:
            raise AuditUnavailable(f"cannot write the dead-letter index: {exc}") from exc


def _names() -> list[str]:
    return [c.strip() for c in COLUMNS.split(",")]


async def _remember_parkings(conn: Connection, batch: list[Parked]) -> None:
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.dead_letter_parkings (message_id, queue, last_failure_at, "
        "first_failure_at, reason, exception, frame, attempts, replay_count) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        [
            (
                p.dead.message_id,
                p.queue,
                p.dead.last_failure_at or datetime.now(UTC),
                p.dead.first_failure_at,
                p.dead.reason,
                p.dead.exception,
                p.dead.frame,
                p.dead.attempts,
                p.dead.replay_count,
            )
            for p in batch
            if p.dead.message_id and p.dead.last_failure_at
        ],
    )
