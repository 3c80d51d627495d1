"""The outbox is one package: the only place that defines the table or inserts into it, and
its row writer stands apart from the broker code (the consumer runtime imports it, so it
must not import the runtime's package back)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from shared.db.schemas import SCHEMAS

ROOT = Path(__file__).resolve().parents[2]
OUTBOX = ROOT / "shared" / "outbox"
# The statements that define an outbox table or add a row to one: `INSERT INTO {S}.outbox`,
# `CREATE TABLE IF NOT EXISTS "{schema}".outbox`, `ALTER TABLE booking.outbox`.
STATEMENT = re.compile(
    r"(INSERT\s+INTO|CREATE\s+TABLE(\s+IF\s+NOT\s+EXISTS)?|ALTER\s+TABLE)\s+\S*\.outbox\b",
    re.IGNORECASE,
)


def test_only_the_outbox_package_defines_an_outbox_table_or_inserts_into_one() -> None:
    sources = [
        path
        for folder in ("shared", "services")
        for pattern in ("*.py", "*.sql")
        for path in (ROOT / folder).rglob(pattern)
    ]
    found = {
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in sources
        if not path.is_relative_to(OUTBOX)
        for match in STATEMENT.finditer(path.read_text())
    }
    assert sources
    assert found == set()


def test_every_service_schema_applies_the_outbox_migrations() -> None:
    services = [s for s in SCHEMAS if s.name != "ops"]
    assert services
    assert all(OUTBOX / "migrations" in s.migrations for s in services)
    assert list((OUTBOX / "migrations").glob("*.sql"))


def test_the_row_writer_loads_nothing_of_the_messaging_package() -> None:
    # A fresh interpreter: this one has loaded everything already.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, shared.outbox.rows, shared.outbox.claims; "
            "print(sorted(m for m in sys.modules if m.startswith('shared.messaging')))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert loaded.stdout.strip() == "[]"
