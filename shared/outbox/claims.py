"""A relay pass's two database steps, in the pass's transaction: claim a batch of unsent rows,
then mark what the broker confirmed.

The claim locks its rows (``FOR UPDATE SKIP LOCKED``) until the pass commits, so replicas
relaying the same outbox side by side take different rows, and a row is marked sent only
after its confirm: a crash or a broker outage leaves it for the next pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from shared.db.pool import Connection
from shared.outbox.rows import COLUMNS


async def claim_batch(conn: Connection, schema: str, limit: int) -> list[asyncpg.Record]:
    """Up to ``limit`` unsent rows, oldest first, locked until the transaction ends; the
    ones another replica holds are skipped, not waited for."""
    return await conn.fetch(
        f"""SELECT id, {COLUMNS} FROM "{schema}".outbox WHERE published_at IS NULL
            ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
        limit,
    )


async def mark_batch(
    conn: Connection,
    schema: str,
    rows: Sequence[asyncpg.Record],
    errors: Sequence[BaseException | None],
) -> tuple[int, int]:
    """Mark the rows whose error is None sent; count an attempt on the others, with its
    error, so they are tried again. Returns (sent, not sent)."""
    done = [row["id"] for row, error in zip(rows, errors, strict=True) if error is None]
    failures = [
        (row["id"], str(error))
        for row, error in zip(rows, errors, strict=True)
        if error is not None
    ]
    if done:
        await conn.execute(
            f'UPDATE "{schema}".outbox SET published_at = now(), '
            "publish_attempts = publish_attempts + 1 WHERE id = ANY($1::bigint[])",
            done,
        )
    if failures:
        await conn.executemany(
            f'UPDATE "{schema}".outbox SET publish_attempts = publish_attempts + 1, '
            "last_error = $2 WHERE id = $1",
            failures,
        )
    return len(done), len(failures)
