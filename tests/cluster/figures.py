"""What a cluster scenario reports beyond the chaos suite's figures (tests/chaos/figures.py):
how long the system took to recover from each fault, and what the clients felt. Printed after
each run, and collected into tests/cluster/results/latest.md after a full run."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from tests.chaos.figures import Figures
from tests.chaos.observed import ObservedSystem
from tests.support.load import LoadRecord
from tests.support.stack import EFFECT_TABLES


@dataclass
class ClusterFigures:
    # The chaos suite's figures, once the run has been checked.
    figures: Figures = field(default_factory=lambda: Figures("not checked"))
    # Per fault: seconds until every work queue had a leader on a running node again, and
    # until a booking made right after the fault had all its effects (end to end).
    leader_moved: list[float] = field(default_factory=list)
    recovered: list[float] = field(default_factory=list)
    # The client's view: the slowest answer of POST /bookings, and answers other than 201.
    api_longest: float = 0.0
    api_failed: int = 0
    api_statuses: str = ""  # what the answers other than 201 were
    # The longest a committed booking waited for its last effect.
    effects_longest: float = 0.0

    def table(self) -> str:
        rows = [
            ("new leaders elected after (s)", _seconds(self.leader_moved)),
            ("booking to all effects after the fault (s)", _seconds(self.recovered)),
            ("longest POST /bookings answer (s)", f"{self.api_longest:.2f}"),
            ("POST /bookings answers other than 201", f"{self.api_failed} {self.api_statuses}"),
            ("longest booking to its last effect (s)", f"{self.effects_longest:.1f}"),
        ]
        width = max(len(k) for k, _ in rows)
        return self.figures.table() + "\n" + "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values) or "-"


def client_view(record: LoadRecord) -> tuple[float, int, str]:
    """The slowest answer, how many were not 201, and what they were."""
    others = Counter(str(a.status) for a in record.answers if a.status != 201)
    listed = ", ".join(f"{status}: {n}" for status, n in sorted(others.items()))
    return record.max_latency, sum(others.values()), f"({listed})" if listed else ""


async def effects_longest(system: ObservedSystem) -> float:
    """Seconds from a booking's commit to its last effect, the longest of the run."""
    conn = await asyncpg.connect(system.env.database_url, timeout=10)
    try:
        longest = 0.0
        for service, table in EFFECT_TABLES.items():
            stamp = "issued_at" if service == "voucher" else "created_at"
            value = await conn.fetchval(
                f"SELECT extract(epoch FROM max(x.{stamp} - b.created_at)) "
                f"FROM {table} x JOIN booking.bookings b ON b.id = x.booking_id"
            )
            longest = max(longest, float(value or 0))
        return longest
    finally:
        await conn.close()


def results_markdown(collected: list[ClusterFigures]) -> str:
    header = (
        "| scenario | bookings (201 / committed) | faults | effects n / e / v | emails (dup.) "
        "| redeliveries absorbed | dead-lettered | lost | new leaders after (s) "
        "| all effects after (s) | longest API answer (s) | API non-201 "
        "| longest booking to effects (s) | s |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    rows = []
    for c in collected:
        f = c.figures
        effects = " / ".join(str(f.effects.get(s, 0)) for s in ("notification", "email", "voucher"))
        rows.append(
            f"| {f.scenario} | {f.accepted} / {f.committed} | {f.faults} | {effects} "
            f"| {f.emails_received} ({f.email_duplicates}) | {f.redeliveries_absorbed} "
            f"| {f.dead_lettered} | {f.lost} | {_seconds(c.leader_moved)} "
            f"| {_seconds(c.recovered)} | {c.api_longest:.2f} | {c.api_failed} "
            f"| {c.effects_longest:.1f} | {f.seconds:.0f} |"
        )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"# Cluster suite, full run ({stamp}, {os.cpu_count()} cores, `make test-cluster`)\n\n"
        + header
        + "\n".join(rows)
        + "\n"
    )
