"""How ``bookingctl`` shows things: tables, JSON, a progress bar, the final summary line."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import click
from pydantic import BaseModel

from shared.deadletters.model import AuditEntry, DeadLetter, QueueInfo, Summary
from shared.deadletters.pages import Group


def print_json(value: BaseModel | Sequence[BaseModel]) -> None:
    data: Any = (
        value.model_dump(mode="json")
        if isinstance(value, BaseModel)
        else [v.model_dump(mode="json") for v in value]
    )
    click.echo(json.dumps(data, indent=2))


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


class ProgressBar:
    """A click progress bar on stderr, created once the queue's depth is known."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None
        self.done = 0

    def __call__(self, summary: Summary) -> None:
        if self.bar is None:
            self.bar = click.progressbar(
                length=max(summary.total, 1), label=self.label, file=sys.stderr, show_pos=True
            )
            self.bar.__enter__()
        self.bar.update(summary.seen - self.done)
        self.done = summary.seen

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def summary_line(summary: Summary, started: float, as_json: bool) -> None:
    if as_json:
        print_json(summary)
    else:
        verb = (
            "would replay"
            if summary.dry_run
            else {"replay": "replayed"}.get(summary.operation, "purged")
        )
        done = summary.purged if summary.operation == "purge" else summary.replayed
        audit = f", audit #{summary.audit_id}" if summary.audit_id else ""
        click.echo(
            f"{summary.queue}: {verb} {done}, skipped {summary.skipped}, failed {summary.failed}"
            f" (seen {summary.seen} of {summary.total}, {time.monotonic() - started:.1f}s{audit})"
        )


def queues_table(infos: Sequence[QueueInfo]) -> None:
    click.echo(f"{'QUEUE':<16} {'MESSAGES':>8}  {'OLDEST':>7}  REPLAYS TO")
    for info in infos:
        oldest = age(info.oldest_age_seconds)
        click.echo(f"{info.queue:<16} {info.messages:>8}  {oldest:>7}  {info.target_queue}")


def dead_letters(messages: Sequence[DeadLetter]) -> None:
    for m in messages:
        first = m.first_failure_at.isoformat() if m.first_failure_at else "-"
        last = m.last_failure_at.isoformat() if m.last_failure_at else "-"
        click.echo(
            f"{m.message_id}  {m.event_type}  booking {m.booking_id}\n"
            f"    reason {m.reason}  attempts {m.attempts}  replays {m.replay_count}\n"
            f"    first failure {first}  last failure {last}\n"
            f"    {m.exception or '-'}"
        )
    click.echo(f"{len(messages)} message(s) shown", err=True)


def audit_entries(entries: Sequence[AuditEntry]) -> None:
    for e in entries:
        counts = (
            f"replayed {e.replayed} purged {e.purged} skipped {e.skipped} failed {e.failed}"
            if e.finished_at is not None
            else "unfinished (still running, or the process was killed)"
        )
        dry = " (dry run)" if e.dry_run else ""
        click.echo(
            f"#{e.id} {e.at.isoformat(timespec='seconds')} {e.actor} {e.operation}{dry} "
            f"{e.queue} {json.dumps(e.filters)} {e.status}: {counts}"
            + (f" error: {e.error}" if e.error else "")
        )


def groups_table(groups: Sequence[Group]) -> None:
    click.echo(f"{'FINGERPRINT':<16} {'QUEUE':<16} {'COUNT':>6}  {'LAST SEEN':<20} FAILURE")
    for g in groups:
        last = g.last_seen.isoformat(timespec="seconds")[:19]
        failure = f"{g.exception_type or g.reason}: {g.reason_pattern} ({g.frame or '-'})"
        state = f" [{g.state}]" if g.state else ""
        click.echo(
            f"{g.fingerprint:<16} {','.join(g.queues):<16} {g.count:>6}  {last:<20} "
            f"{failure}{state}"
        )
    click.echo(f"{len(groups)} group(s)", err=True)
