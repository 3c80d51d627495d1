"""Schema migrations: numbered SQL files applied once per schema, at the service's start.

A tiny runner instead of alembic/yoyo: those are synchronous and bring an ORM-sized
dependency for what is ordered SQL files and a version table. Several replicas may start
at once: a transaction-scoped advisory lock per schema makes them take turns.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg

from shared.db.pool import acquire

CONSUMER_MIGRATIONS = Path(__file__).parent / "consumer_migrations"


def _migrations(directories: list[Path]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for directory in directories:
        for path in sorted(directory.glob("*.sql")):
            found.append(
                (f"{directory.parent.name}/{directory.name}/{path.name}", path.read_text())
            )
    return found


async def migrate(pool: asyncpg.Pool, schema: str, directories: list[Path]) -> list[str]:
    """Apply pending migrations; return the names applied. ``{schema}`` in SQL is replaced."""
    applied: list[str] = []
    async with acquire(pool, timeout=30) as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations '
            "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {
            r["name"] for r in await conn.fetch(f'SELECT name FROM "{schema}".schema_migrations')
        }
        for name, sql in _migrations(directories):
            if name in done:
                continue
            await conn.execute(sql.replace("{schema}", schema))
            await conn.execute(f'INSERT INTO "{schema}".schema_migrations (name) VALUES ($1)', name)
            applied.append(name)
    return applied
