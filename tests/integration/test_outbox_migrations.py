"""The outbox's table is defined once (shared/outbox/migrations/): a database migrated by the
files that used to define it, one copy per kind of service, migrates cleanly with the new
one, keeps its rows, and ends up with the same table as a database migrated afresh."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from shared.db.migrate import CONSUMER_MIGRATIONS, migrate
from shared.db.schemas import SERVICES, schema
from tests.support.infra import TestEnv

# The files as the last release before the package had them (tests/data/README.md).
OLD_FILES = Path(__file__).parents[1] / "data" / "migrations_before_the_outbox_package"
NEW = "outbox/migrations/001_outbox.sql"
# A table from before the traceparent column: the files that added it left out.
WITHOUT_TRACEPARENT = ("003_outbox_traceparent.sql", "004_outbox_traceparent.sql")


def _old_folders(root: Path, service: str, left_out: tuple[str, ...]) -> list[Path]:
    """The migration folders of the last release, under the names the runner records them by
    (``db/consumer_migrations/...``, ``<service>/migrations/...``)."""
    folders = []
    for current in (CONSUMER_MIGRATIONS, SERVICES / service / "migrations"):
        old = root / current.parent.name / current.name
        old.mkdir(parents=True)
        for source in (current, OLD_FILES / current.parent.name / current.name):
            for path in source.glob("*.sql"):
                if path.name not in left_out:
                    shutil.copy(path, old / path.name)
        folders.append(old)
    return folders


async def _table(conn: asyncpg.Pool, name: str) -> dict[str, Any]:
    """What defines ``name``.outbox: columns, constraints and indexes, with the schema's name
    taken out so two schemas compare."""

    def unnamed(text: str | None) -> str | None:
        return None if text is None else text.replace(f"{name}.", "<schema>.")

    columns = await conn.fetch(
        """SELECT column_name, data_type, is_nullable, column_default
           FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'outbox'
           ORDER BY ordinal_position""",
        name,
    )
    constraints = await conn.fetch(
        """SELECT conname, pg_get_constraintdef(c.oid) AS def FROM pg_constraint c
           WHERE conrelid = format('%I.outbox', $1::text)::regclass ORDER BY conname""",
        name,
    )
    indexes = await conn.fetch(
        """SELECT indexname, indexdef FROM pg_indexes
           WHERE schemaname = $1 AND tablename = 'outbox' ORDER BY indexname""",
        name,
    )
    return {
        "columns": [(*c[:3], unnamed(c["column_default"])) for c in columns],
        "constraints": [tuple(c) for c in constraints],
        "indexes": [(i["indexname"], unnamed(i["indexdef"])) for i in indexes],
    }


@pytest.mark.parametrize("service", ["booking", "email"])
@pytest.mark.parametrize(
    "left_out", [(), WITHOUT_TRACEPARENT], ids=["last-release", "before-traceparent"]
)
async def test_a_database_migrated_by_the_old_outbox_files_migrates_cleanly_with_the_new_one(
    env: TestEnv, tmp_path: Path, service: str, left_out: tuple[str, ...]
) -> None:
    pool = await asyncpg.create_pool(env.database_url, min_size=1, max_size=2)
    try:
        await migrate(pool, service, _old_folders(tmp_path, service, left_out))
        await pool.execute(
            f"""INSERT INTO {service}.outbox (event_id, event_type, booking_id, occurred_at, body)
                VALUES ($1, 'BookingConfirmed', $2, now(), '{{}}')""",
            uuid4(),
            uuid4(),
        )
        rows = await pool.fetch(f"SELECT * FROM {service}.outbox")
        before = await _table(pool, service)
        applied = await migrate(pool, service, list(schema(service).migrations))
        after = await _table(pool, service)
        kept = await pool.fetch(f"SELECT * FROM {service}.outbox")
        await migrate(pool, "fresh", list(schema(service).migrations))
        fresh = await _table(pool, "fresh")
    finally:
        await pool.close()
    assert applied == [NEW]
    assert [dict(r) for r in kept] == [{"traceparent": None, **dict(r)} for r in rows]
    assert after == fresh
    if not left_out:  # the table the last release made is left exactly as it was
        assert before == after
    else:  # the column a release before it lacked is added
        assert [c[0] for c in after["columns"]] == [c[0] for c in before["columns"]] + [
            "traceparent"
        ]
