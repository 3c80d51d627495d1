"""Retention on real PostgreSQL: old rows go in bounded batches, recent rows and unsent outbox
rows stay, a locked row is skipped rather than waited for; and each service runs the job on
its own tables (email through its consumer process, booking through its app's lifespan)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import uuid4

import asyncpg
import pytest

from services.email.bootstrap import MIGRATIONS as EMAIL_MIGRATIONS
from shared.db.migrate import migrate
from shared.db.retention import RetentionJob, created_before, processed_events, sent_outbox
from shared.db.schemas import service_migrations
from tests.support.infra import TestEnv
from tests.support.stack import booking_api, fetchval, running_consumer, wait_until

OLD = timedelta(days=60)
RECENT = timedelta(hours=1)


@pytest.fixture
async def pool(env: TestEnv) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(env.database_url, min_size=1, max_size=4)
    assert created is not None
    try:
        await migrate(created, "email", service_migrations(EMAIL_MIGRATIONS))
        yield created
    finally:
        await created.close()


async def add_outbox(
    conn: asyncpg.Connection | asyncpg.Pool, schema: str, age: timedelta, *, sent: bool
) -> None:
    await conn.execute(
        f"INSERT INTO {schema}.outbox (event_id, event_type, booking_id, occurred_at, body, "
        "created_at, published_at) "
        "VALUES ($1, 'FulfilmentProgressed', $2, now() - $3::interval, '{}', "
        "now() - $3::interval, CASE WHEN $4 THEN now() - $3::interval END)",
        uuid4(),
        uuid4(),
        age,
        sent,
    )


async def add_processed(
    conn: asyncpg.Connection | asyncpg.Pool, schema: str, age: timedelta
) -> None:
    await conn.execute(
        f"INSERT INTO {schema}.processed_events (event_id, event_type, booking_id, processed_at)"
        " VALUES ($1, 'BookingConfirmed', $2, now() - $3::interval)",
        uuid4(),
        uuid4(),
        age,
    )


async def add_email(conn: asyncpg.Connection | asyncpg.Pool, age: timedelta) -> None:
    await conn.execute(
        "INSERT INTO email.emails (event_id, booking_id, kind, recipient, subject, created_at)"
        " VALUES ($1, $2, 'confirmation', 'ada@example.com', 'Your booking', "
        "now() - $3::interval)",
        uuid4(),
        uuid4(),
        age,
    )


async def count(pool: asyncpg.Pool, table: str, where: str = "true") -> int:
    result: int = await pool.fetchval(f"SELECT count(*) FROM {table} WHERE {where}")
    return result


def email_job(pool: asyncpg.Pool, *, batch_size: int) -> RetentionJob:
    rules = [
        sent_outbox("email", timedelta(days=7)),
        processed_events("email", timedelta(days=30)),
        created_before("email.emails", "event_id", timedelta(days=30)),
    ]
    return RetentionJob(pool, rules, interval=3600, batch_size=batch_size)


async def test_old_rows_go_in_batches_while_recent_rows_and_unsent_outbox_rows_stay(
    pool: asyncpg.Pool,
) -> None:
    for _ in range(5):
        await add_outbox(pool, "email", OLD, sent=True)
        await add_processed(pool, "email", OLD)
        await add_email(pool, OLD)
    await add_outbox(pool, "email", OLD, sent=False)  # still owed to the broker
    await add_outbox(pool, "email", RECENT, sent=True)
    await add_processed(pool, "email", timedelta(days=20))
    await add_email(pool, timedelta(days=20))

    deleted = await email_job(pool, batch_size=2).run_once()  # 5 rows: three batches each

    assert deleted == {'"email".outbox': 5, '"email".processed_events': 5, "email.emails": 5}
    assert await count(pool, "email.outbox", "published_at IS NULL") == 1
    assert await count(pool, "email.outbox", "published_at IS NOT NULL") == 1
    assert await count(pool, "email.processed_events") == 1
    assert await count(pool, "email.emails") == 1
    assert (await email_job(pool, batch_size=2).run_once()) == dict.fromkeys(deleted, 0)


async def test_a_row_locked_by_another_transaction_is_skipped_not_waited_for(
    pool: asyncpg.Pool,
) -> None:
    for _ in range(3):
        await add_processed(pool, "email", OLD)
    async with pool.acquire() as holder, holder.transaction():
        await holder.execute(
            "SELECT 1 FROM email.processed_events ORDER BY event_id LIMIT 1 FOR UPDATE"
        )
        deleted = await asyncio.wait_for(email_job(pool, batch_size=10).run_once(), 5)
    assert deleted['"email".processed_events'] == 2
    assert await count(pool, "email.processed_events") == 1  # the next pass takes it
    assert (await email_job(pool, batch_size=10).run_once())['"email".processed_events'] == 1


async def test_the_email_process_runs_retention_on_its_outbox_records_and_emails(
    env: TestEnv,
) -> None:
    async with running_consumer("email", env, retention_interval=0.2) as process:
        pool = process.pool
        await add_outbox(pool, "email", OLD, sent=True)
        await add_outbox(pool, "email", OLD, sent=False)
        await add_processed(pool, "email", OLD)
        await add_processed(pool, "email", RECENT)
        await add_email(pool, OLD)
        await add_email(pool, RECENT)

        async def old_rows_gone() -> bool:
            return (
                await count(pool, "email.outbox")
                + await count(pool, "email.processed_events")
                + await count(pool, "email.emails")
            ) == 3

        await wait_until(old_rows_gone, what="the old rows deleted")
        assert await count(pool, "email.outbox", "published_at IS NULL") == 1
        assert (
            await count(pool, "email.processed_events", "processed_at > now() - '1 day'::interval")
            == 1
        )
        assert await count(pool, "email.emails", "created_at > now() - '1 day'::interval") == 1


async def test_the_booking_service_runs_retention_on_its_idempotency_keys_outbox_and_records(
    env: TestEnv,
) -> None:
    async with booking_api(env, retention_interval=0.2, relay_enabled=False):
        conn = await asyncpg.connect(env.database_url)
        try:
            for age, key in ((timedelta(days=2), "old-key"), (RECENT, "new-key")):
                await conn.execute(
                    "INSERT INTO booking.idempotency_keys (key, request_hash, created_at) "
                    "VALUES ($1, 'h', now() - $2::interval)",
                    key,
                    age,
                )
            await add_outbox(conn, "booking", OLD, sent=True)
            await add_outbox(conn, "booking", RECENT, sent=True)
            await add_processed(conn, "booking", OLD)

            async def old_rows_gone() -> bool:
                remaining = await conn.fetchval(
                    "SELECT (SELECT count(*) FROM booking.idempotency_keys)"
                    " + (SELECT count(*) FROM booking.outbox)"
                    " + (SELECT count(*) FROM booking.processed_events)"
                )
                return bool(remaining == 2)

            await wait_until(old_rows_gone, what="the old rows deleted")
        finally:
            await conn.close()
    assert await fetchval(env, "SELECT key FROM booking.idempotency_keys") == "new-key"
