"""Create the database named in DATABASE_URL if it does not exist (used by the local runner).

Run as ``python -m shared.db.create_database``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from urllib.parse import urlsplit, urlunsplit

import asyncpg

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/booking"


def _split(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name:
        raise SystemExit(f"error: DATABASE_URL has no database name: {url}")
    return urlunsplit(parts._replace(path="/postgres")), name


async def ensure_database(url: str) -> bool:
    """Return True when the database had to be created."""
    admin_url, name = _split(url)
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            return False
        return True
    finally:
        await conn.close()


async def drop_database(url: str) -> None:
    admin_url, name = _split(url)
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def main() -> None:
    url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    try:
        created = asyncio.run(ensure_database(url))
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"error: cannot create the database for DATABASE_URL: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    if created:
        print(f"created database {_split(url)[1]}")


if __name__ == "__main__":
    main()
