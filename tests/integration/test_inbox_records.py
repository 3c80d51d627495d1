"""The consumer runtime's transaction in two round trips (shared/messaging/inbox.py) and the
booking service's reports recorded a batch at a time (services/booking/fulfilment.py),
against a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest

from services.booking.bootstrap import MIGRATIONS
from services.booking.fulfilment import record_progresses
from shared.db.migrate import migrate
from shared.db.schemas import service_migrations
from shared.events import FulfilmentProgressed, StepStatus
from shared.messaging import inbox
from shared.outbox.rows import OutboxRow, literal
from tests.support.infra import TestEnv

AWKWARD = ["plain", "it's", "back\\slash", "\\'; DROP TABLE x; --", "é ☃ \u2028", "$$", "E'x'"]


@pytest.fixture
async def pool(env: TestEnv) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(env.database_url, min_size=1, max_size=2)
    assert created is not None
    await migrate(created, "booking", service_migrations(MIGRATIONS))
    try:
        yield created
    finally:
        await created.close()


@pytest.mark.parametrize("conforming", ["on", "off"])
async def test_a_literal_reads_back_as_the_same_text_whatever_the_server_setting(
    pool: asyncpg.Pool, conforming: str
) -> None:
    async with pool.acquire() as conn:
        await conn.execute(f"SET standard_conforming_strings = {conforming}")
        for text in AWKWARD:
            assert await conn.fetchval(f"SELECT {literal(text)}::text") == text
        await conn.execute("RESET standard_conforming_strings")


def test_a_literal_refuses_a_nul_rather_than_cutting_it() -> None:
    with pytest.raises(ValueError, match="NUL"):
        literal("a\x00b")


def _report(
    booking_id: UUID, step: str, status: StepStatus, at: datetime, code: str | None = None
) -> FulfilmentProgressed:
    return FulfilmentProgressed(
        booking_id=booking_id,
        step=step,
        status=status,
        attempts=1,
        source_event_id=uuid4(),
        source_event_type="BookingConfirmed",
        error=None if code is None else "TransientError: x",
        error_code=code,
        occurred_at=at,
    )


async def test_a_claim_commits_with_its_report_and_a_second_claim_finds_it(
    pool: asyncpg.Pool,
) -> None:
    event = _report(uuid4(), "email", "done", datetime.now(UTC))
    report = _report(event.booking_id, "voucher", "done", datetime.now(UTC))
    async with pool.acquire() as tx:
        assert await inbox.begin_and_claim(tx, "booking", event)
        await inbox.commit(tx, "booking", [OutboxRow.of(report)])
        assert not tx.is_in_transaction()
        assert not await inbox.begin_and_claim(tx, "booking", event)
        await inbox.commit(tx, "booking")
        row = await tx.fetchrow(
            "SELECT body, occurred_at FROM booking.outbox WHERE event_id = $1", report.event_id
        )
    assert row is not None
    assert FulfilmentProgressed.model_validate_json(row["body"]) == report
    assert row["occurred_at"] == report.occurred_at


async def test_a_rolled_back_claim_leaves_no_record(pool: asyncpg.Pool) -> None:
    event = _report(uuid4(), "email", "done", datetime.now(UTC))
    async with pool.acquire() as tx:
        assert await inbox.begin_and_claim(tx, "booking", event)
        await inbox.rollback(tx)
        assert not tx.is_in_transaction()
        assert await inbox.begin_and_claim(tx, "booking", event)  # free to claim again
        await inbox.rollback(tx)


async def test_a_batch_of_reports_keeps_the_newest_per_step_as_one_by_one_would(
    pool: asyncpg.Pool,
) -> None:
    now = datetime.now(UTC)
    first, second = uuid4(), uuid4()
    async with pool.acquire() as tx, tx.transaction():
        await record_progresses(
            [
                _report(first, "email", "retrying", now, "smtp-temporary-failure"),
                _report(first, "voucher", "done", now),
                _report(second, "email", "done", now),
            ],
            tx,
        )
        # Older than what is stored: ignored. The same step twice: applied in order.
        await record_progresses(
            [
                _report(second, "email", "retrying", now - timedelta(seconds=1), "x-old"),
                _report(first, "email", "done", now + timedelta(seconds=1)),
                _report(first, "email", "retrying", now + timedelta(seconds=2), "smtp-rejected"),
            ],
            tx,
        )
        rows = await tx.fetch(
            "SELECT booking_id, step, status, last_error_code FROM booking.fulfilment"
        )
    found = {(r["booking_id"], r["step"]): (r["status"], r["last_error_code"]) for r in rows}
    assert found == {
        (first, "email"): ("retrying", "smtp-rejected"),
        (first, "voucher"): ("done", None),
        (second, "email"): ("done", None),
    }
