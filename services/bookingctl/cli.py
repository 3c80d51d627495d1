"""``bookingctl``: the operator's command line for dead-letter queues.

Exit codes: 0 done; 1 failed (broker or database unreachable, a message not replayed, purge
declined); 2 bad usage (unknown queue, bad option). Errors are one line on stderr.
"""

from __future__ import annotations

import logging
import time

import click
from pydantic import ValidationError

from services.bookingctl import groups, render
from services.bookingctl.running import actor, fail, run
from shared.deadletters.errors import InvalidRequest
from shared.deadletters.model import Filters, Summary, parse_duration
from shared.logging_setup import configure_logging


def _finish(summary: Summary, started: float, as_json: bool) -> None:
    render.summary_line(summary, started, as_json)
    if not summary.ok:
        fail(summary.error or f"{summary.failed} message(s) failed and stay in the queue")


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log what happens (to stderr).")
def main(verbose: bool) -> None:
    """Operate the hotel-booking system."""
    if verbose:
        configure_logging("bookingctl", "INFO")
    else:
        # Errors reach the operator as one line each; without a handler, the libraries'
        # own log records would go to stderr through logging's last-resort handler.
        logging.getLogger().addHandler(logging.NullHandler())


@main.group()
def dlq() -> None:
    """Inspect, replay and purge the consumers' dead-letter queues.

    QUEUE is a service name (email) or a full queue name (email.dlq)."""


@dlq.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(as_json: bool) -> None:
    """Each consumer's dead-letter queue, its depth and the age of its oldest message."""
    infos = run(lambda ops: ops.list_queues(), audited=False)
    if as_json:
        render.print_json(infos)
    else:
        render.queues_table(infos)


@dlq.command()
@click.argument("queue")
@click.option("--limit", default=20, show_default=True, help="At most this many messages.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(queue: str, limit: int, as_json: bool) -> None:
    """The messages at the head of QUEUE, left in the queue."""
    messages = run(lambda ops: ops.show(queue, limit), audited=False)
    if as_json:
        render.print_json(messages)
    else:
        render.dead_letters(messages)


def _filters(
    select_all: bool,
    ids: tuple[str, ...],
    limit: int | None = None,
    reason: str | None = None,
    event_type: str | None = None,
    older_than: str | None = None,
    fingerprint: str | None = None,
) -> Filters:
    if select_all and ids:
        fail("give either --all or --id, not both", 2)
    try:
        filters = Filters(
            select_all=select_all,
            ids=ids,
            reason=reason,
            event_type=event_type,
            older_than=parse_duration(older_than) if older_than else None,
            limit=limit,
            fingerprint=fingerprint,
        )
        filters.check()
    except InvalidRequest as exc:
        fail(str(exc), 2)
    except ValidationError as exc:  # a value Filters refuses: a NUL, a --limit past 2**31-1
        fail("; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors()), 2)
    return filters


@dlq.command()
@click.argument("queue")
@click.option("--all", "select_all", is_flag=True, help="Every message (filters still apply).")
@click.option("--id", "ids", multiple=True, metavar="MESSAGE_ID", help="This message; repeatable.")
@click.option("--reason", help="Only this x-reason (e.g. retries-exhausted).")
@click.option("--event-type", help="Only this event type (e.g. BookingConfirmed).")
@click.option("--older-than", metavar="DURATION", help="First failed at least this long ago.")
@click.option("--fingerprint", help="Only this failure group (see `bookingctl dlq groups`).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many messages.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), help="Messages/s at most.")
@click.option("--dry-run", is_flag=True, help="Count what would be replayed; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def replay(
    queue: str,
    select_all: bool,
    ids: tuple[str, ...],
    reason: str | None,
    event_type: str | None,
    older_than: str | None,
    fingerprint: str | None,
    limit: int | None,
    rate: float | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Send matching messages back to QUEUE's consumer only (never to the fanout)."""
    filters = _filters(select_all, ids, limit, reason, event_type, older_than, fingerprint)
    progress = render.ProgressBar(f"{'checking' if dry_run else 'replaying'} {queue}")
    started = time.monotonic()
    try:
        summary = run(
            lambda ops: ops.replay(
                queue, filters, actor=actor(), rate=rate, dry_run=dry_run, progress=progress
            ),
            audited=True,
        )
    finally:
        progress.close()
    _finish(summary, started, as_json)


@dlq.command()
@click.argument("queue")
@click.option("--all", "select_all", is_flag=True, help="Every message in the queue.")
@click.option("--id", "ids", multiple=True, metavar="MESSAGE_ID", help="This message; repeatable.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(queue: str, select_all: bool, ids: tuple[str, ...], yes: bool) -> None:
    """Discard messages from QUEUE for good (asks first, unless --yes)."""
    filters = _filters(select_all, ids)
    what = "ALL messages" if select_all else f"{len(ids)} message id(s)"
    if not yes and not click.confirm(f"Discard {what} from {queue} for good?", err=True):
        fail("purge declined; nothing discarded")
    progress = render.ProgressBar(f"purging {queue}")
    started = time.monotonic()
    try:
        summary = run(
            lambda ops: ops.purge(queue, filters, actor=actor(), progress=progress), audited=True
        )
    finally:
        progress.close()
    _finish(summary, started, as_json=False)


@dlq.command()
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--queue", help="Only this queue.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def history(limit: int, queue: str | None, as_json: bool) -> None:
    """The latest replays and purges: who, when, filters, counts."""
    entries = run(lambda ops: ops.history(limit, queue), audited=True)
    if as_json:
        render.print_json(entries)
    else:
        render.audit_entries(entries)


for _command in (groups.groups, groups.canary, groups.group_state):
    dlq.add_command(_command)
