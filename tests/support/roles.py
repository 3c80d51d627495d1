"""PostgreSQL roles created by a test (through the migration step): unique names per run,
dropped afterwards, since roles belong to the whole server, not to the test's database."""

from __future__ import annotations

import uuid

import asyncpg

from shared.db.schemas import SCHEMAS


def role_prefix() -> str:
    return f"bt_{uuid.uuid4().hex[:8]}_"


async def drop_roles(database_url: str, prefix: str) -> None:
    """Every schema's role of ``prefix``, after what they own in the test's database."""
    roles = [schema.role(prefix) for schema in SCHEMAS]
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY($1)", roles
        )
        for role in roles:
            if await admin.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role):
                await admin.execute(f'DROP OWNED BY "{role}" CASCADE')
                await admin.execute(f'DROP ROLE "{role}"')
    finally:
        await admin.close()
