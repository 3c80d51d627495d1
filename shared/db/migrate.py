"""Schema migrations: numbered SQL files applied once per schema.

A tiny runner instead of alembic/yoyo: those are synchronous and bring an ORM-sized
dependency for what is ordered SQL files and a version table. Several replicas may start
at once: a transaction-scoped advisory lock per schema makes them take turns.

In production the migration step (shared/db/provision.py) applies them as PostgreSQL's
superuser, each schema's objects owned by the schema's own role; the services connect as
those roles and only check (:func:`prepare`) that their schema is up to date. The tests
let the services migrate at start (MIGRATE_ON_START), as the superuser.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg

from shared.db.pool import Connection, acquire
from shared.errors import ConfigurationError

CONSUMER_MIGRATIONS = Path(__file__).parent / "consumer_migrations"
# What the owner of a schema must own in it: tables (ordinary, partitioned, foreign), views.
# A table's own sequences (serial, identity) follow it; standalone ones are done after.
_OWNED_KINDS = ("r", "p", "v", "m", "f")
_ALTER = {"r": "TABLE", "p": "TABLE", "f": "FOREIGN TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW"}


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
    async with acquire(pool, timeout=30) as conn:
        return await migrate_on(conn, schema, directories)


async def migrate_on(
    conn: Connection | asyncpg.Connection,
    schema: str,
    directories: list[Path],
    owner: str | None = None,
) -> list[str]:
    """:func:`migrate` on one connection; with ``owner`` (a role), the schema and everything
    in it are made that role's, and the migrations run as it (the caller must be allowed to
    SET ROLE to it: the superuser is)."""
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
        if owner is None:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        else:
            await _hand_over(conn, schema, owner)
            # What the migrations create belongs to the owner, not to the superuser.
            await conn.execute(f'SET LOCAL ROLE "{owner}"')
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


async def _hand_over(conn: Connection | asyncpg.Connection, schema: str, owner: str) -> None:
    """The schema, and whatever is in it already (a deployment that migrated as the
    superuser before roles existed), owned by ``owner``."""
    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}" AUTHORIZATION "{owner}"')
    await conn.execute(f'ALTER SCHEMA "{schema}" OWNER TO "{owner}"')
    others = """SELECT c.relname, c.relkind::text AS relkind FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = $1 AND c.relkind::text = ANY($2::text[])
                  AND pg_get_userbyid(c.relowner) <> $3"""
    for row in await conn.fetch(others, schema, list(_OWNED_KINDS), owner):
        kind = _ALTER[row["relkind"]]
        await conn.execute(f'ALTER {kind} "{schema}"."{row["relname"]}" OWNER TO "{owner}"')
    for row in await conn.fetch(others, schema, ["S"], owner):
        await conn.execute(f'ALTER SEQUENCE "{schema}"."{row["relname"]}" OWNER TO "{owner}"')


async def pending(pool: asyncpg.Pool, schema: str, directories: list[Path]) -> list[str]:
    """The migrations not applied to ``schema`` yet (every one when it does not exist).
    ConfigurationError when this connection's role may not read the schema."""
    names = [name for name, _ in _migrations(directories)]
    try:
        async with acquire(pool, timeout=30) as conn:
            rows = await conn.fetch(f'SELECT name FROM "{schema}".schema_migrations')
    except (asyncpg.InvalidSchemaNameError, asyncpg.UndefinedTableError):
        return names
    except asyncpg.InsufficientPrivilegeError as exc:
        raise ConfigurationError(
            f"this database role may not use the {schema} schema ({exc}): connect as the "
            f"schema's role, or run the migration step (python -m shared.db.provision)"
        ) from exc
    done = {row["name"] for row in rows}
    return [name for name in names if name not in done]


async def prepare(pool: asyncpg.Pool, schema: str, directories: list[Path], *, apply: bool) -> None:
    """At a process's start: migrate ``schema`` (``apply``: MIGRATE_ON_START) or check that
    it is, and refuse to start (ConfigurationError) when it is not."""
    if apply:
        await migrate(pool, schema, directories)
        return
    missing = await pending(pool, schema, directories)
    if missing:
        total = len(_migrations(directories))
        raise ConfigurationError(
            f"the {schema} schema is not migrated ({total - len(missing)} of {total} "
            f"migrations applied; next: {missing[0]}): run the migration step "
            "(python -m shared.db.provision) first, or set MIGRATE_ON_START=true"
        )
