"""The audit table of dead-letter operations, in a schema of the tools' own (``ops``),
reached as that schema's role (never the booking service's).

The migration step (shared/db/provision.py) creates it; at first use the tools check that
it is migrated, or, with MIGRATE_ON_START (the tests), apply the migrations themselves
under the shared runner's advisory lock.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg

from shared.db.migrate import prepare
from shared.db.pool import UNAVAILABLE_ERRORS, acquire
from shared.deadletters.errors import AuditUnavailable
from shared.deadletters.model import AuditEntry, Filters, Summary
from shared.errors import ConfigurationError, DatabaseUnavailable

SCHEMA = "ops"
MIGRATIONS = Path(__file__).parent / "migrations"
_ERRORS: tuple[type[BaseException], ...] = (
    ConfigurationError,  # the ops schema is not migrated, or this role may not use it
    DatabaseUnavailable,
    asyncpg.PostgresError,
    *UNAVAILABLE_ERRORS,
)


class AuditStore:
    def __init__(
        self, pool: asyncpg.Pool, acquire_timeout: float = 5.0, *, migrate: bool = True
    ) -> None:
        self._pool = pool
        self._timeout = acquire_timeout
        self._migrate = migrate
        self._migrated = False
        self._lock = asyncio.Lock()

    @property
    def pool(self) -> asyncpg.Pool:
        """The ops schema's pool (the dead-letter index lives there too)."""
        return self._pool

    async def ready(self) -> None:
        """The ops schema is migrated (or, with ``migrate``, migrates it), once."""
        async with self._lock:
            if not self._migrated:
                await prepare(self._pool, SCHEMA, [MIGRATIONS], apply=self._migrate)
                self._migrated = True

    async def started(
        self,
        *,
        actor: str,
        operation: str,
        queue: str,
        filters: Filters,
        dry_run: bool,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Record an operation before it touches a message; refuse to start without it."""
        try:
            await self.ready()
            async with acquire(self._pool, self._timeout) as conn:
                audit_id: int = await conn.fetchval(
                    f"INSERT INTO {SCHEMA}.dlq_audit "
                    "(actor, operation, queue, filters, dry_run, status) "
                    "VALUES ($1, $2, $3, $4::jsonb, $5, 'running') RETURNING id",
                    actor,
                    operation,
                    queue,
                    json.dumps({**filters.for_audit(), **(details or {})}),
                    dry_run,
                )
        except _ERRORS as exc:
            raise AuditUnavailable(f"cannot write the audit record: {exc}") from exc
        return audit_id

    async def finished(self, audit_id: int, summary: Summary) -> None:
        try:
            async with acquire(self._pool, self._timeout) as conn:
                await conn.execute(
                    f"UPDATE {SCHEMA}.dlq_audit SET status = $2, seen = $3, replayed = $4, "
                    "purged = $5, skipped = $6, failed = $7, error = $8, finished_at = now() "
                    "WHERE id = $1",
                    audit_id,
                    "completed" if summary.ok else "failed",
                    summary.seen,
                    summary.replayed,
                    summary.purged,
                    summary.skipped,
                    summary.failed,
                    summary.error,
                )
        except _ERRORS as exc:
            raise AuditUnavailable(f"cannot complete audit record {audit_id}: {exc}") from exc

    async def history(self, limit: int = 50, queue: str | None = None) -> list[AuditEntry]:
        try:
            await self.ready()
            async with acquire(self._pool, self._timeout) as conn:
                rows = await conn.fetch(
                    f"SELECT * FROM {SCHEMA}.dlq_audit WHERE $2::text IS NULL OR queue = $2 "
                    "ORDER BY id DESC LIMIT $1",
                    limit,
                    queue,
                )
        except _ERRORS as exc:
            raise AuditUnavailable(f"cannot read the audit table: {exc}") from exc
        return [
            AuditEntry.model_validate({**dict(r), "filters": json.loads(r["filters"])})
            for r in rows
        ]
