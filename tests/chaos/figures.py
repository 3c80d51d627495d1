"""The figures a chaos scenario reports: printed after each run, and collected into the
markdown table of ``tests/chaos/results/latest.md`` after a full run."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tests.chaos.system import CONSUMER_SERVICES


@dataclass
class Figures:
    scenario: str
    attempted: int = 0
    accepted: int = 0
    committed: int = 0
    faults: int = 0
    effects: dict[str, int] = field(default_factory=dict)
    emails_received: int = 0
    email_duplicates: int = 0
    redeliveries_absorbed: int = 0
    dead_lettered: int = 0
    poison_dead_lettered: int = 0
    lost: int = 0
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)

    def fail(self, message: str, *, lost: int = 0) -> None:
        self.violations.append(message)
        self.lost += lost

    def table(self) -> str:
        effects = " / ".join(f"{self.effects.get(s, 0)}" for s in CONSUMER_SERVICES)
        rows = [
            (
                "bookings attempted / 201 / committed",
                f"{self.attempted} / {self.accepted} / {self.committed}",
            ),
            ("faults injected", str(self.faults)),
            ("effects notification / email / voucher", effects),
            ("emails received (duplicates)", f"{self.emails_received} ({self.email_duplicates})"),
            ("redeliveries absorbed by idempotency", str(self.redeliveries_absorbed)),
            ("good events dead-lettered", str(self.dead_lettered)),
            ("poison messages dead-lettered", str(self.poison_dead_lettered)),
            ("lost", str(self.lost)),
            ("seconds", f"{self.seconds:.1f}"),
        ]
        width = max(len(k) for k, _ in rows)
        lines = [f"== chaos: {self.scenario} =="]
        lines += [f"  {k.ljust(width)}  {v}" for k, v in rows]
        lines += [f"  VIOLATION: {v}" for v in self.violations[:20]]
        return "\n".join(lines)


def results_markdown(collected: list[Figures]) -> str:
    header = (
        "| scenario | bookings (201 / committed) | faults | effects n / e / v "
        "| emails (dup.) | redeliveries absorbed | dead-lettered good / poison | lost | s |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    rows = [
        f"| {f.scenario} | {f.accepted} / {f.committed} | {f.faults} "
        f"| {f.effects.get('notification', 0)} / {f.effects.get('email', 0)} / "
        f"{f.effects.get('voucher', 0)} | {f.emails_received} ({f.email_duplicates}) "
        f"| {f.redeliveries_absorbed} | {f.dead_lettered} / {f.poison_dead_lettered} "
        f"| {f.lost} | {f.seconds:.0f} |"
        for f in collected
    ]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    cores = os.cpu_count()
    return (
        f"# Chaos suite, full run ({stamp}, {cores} cores, `make test-chaos`)\n\n"
        + header
        + "\n".join(rows)
        + "\n"
    )
