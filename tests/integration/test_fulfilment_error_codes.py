"""The booking API shows a failed step's code, never its text: rows kept from before the
codes existed lose their text when the booking service migrates."""

from __future__ import annotations

import shutil
from pathlib import Path
from uuid import uuid4

import asyncpg

from services.booking.bootstrap import MIGRATIONS
from services.booking.fulfilment import progress_of
from shared.db.migrate import migrate
from shared.db.schemas import service_migrations
from tests.support.infra import TestEnv

CODES = "007_fulfilment_error_codes.sql"


async def test_error_text_stored_before_the_codes_is_replaced_by_unclassified_failure(
    env: TestEnv, tmp_path: Path
) -> None:
    # The migrations before the codes, under the names the runner records them by.
    before = tmp_path / MIGRATIONS.parent.name / MIGRATIONS.name
    before.mkdir(parents=True)
    for path in sorted(MIGRATIONS.glob("*.sql")):
        if path.name < CODES:
            shutil.copy(path, before / path.name)
    booking_id = uuid4()
    pool = await asyncpg.create_pool(env.database_url, min_size=1, max_size=2)
    try:
        await migrate(pool, "booking", service_migrations(before))
        await pool.execute(
            """INSERT INTO booking.fulfilment (booking_id, step, status, attempts,
                   source_event_type, last_error, updated_at)
               VALUES ($1, 'email', 'failed', 5, 'BookingConfirmed',
                   'TransientError: SMTP mail.internal:25 answered 451', now()),
                      ($1, 'voucher', 'done', 1, 'BookingConfirmed', NULL, now())""",
            booking_id,
        )
        applied = await migrate(pool, "booking", service_migrations(MIGRATIONS))
        async with pool.acquire() as conn:
            steps = await progress_of(conn, booking_id)
        text = await pool.fetchval("SELECT string_agg(f::text, ' ') FROM booking.fulfilment f")
    finally:
        await pool.close()
    # The codes' migration comes first among the ones that were missing; later ones follow it.
    assert next(name.rsplit("/", 1)[1] for name in applied) == CODES
    assert steps["email"].last_error == "unclassified-failure"
    assert steps["voucher"].last_error is None
    assert "mail.internal" not in text
