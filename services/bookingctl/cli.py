"""``bookingctl``: the operator's command line for dead-letter queues.

Exit codes: 0 done; 1 failed (broker or database unreachable, a message not replayed, purge
declined); 2 bad usage (unknown queue, bad option). Errors are one line on stderr.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click
from pydantic import ValidationError

from services.bookingctl import render
from services.bookingctl.settings import DlqSettings
from shared.db.pool import create_pool
from shared.deadletters.audit import AuditStore
from shared.deadletters.errors import DlqError, InvalidRequest, UnknownQueue
from shared.deadletters.groups import FailureGroups
from shared.deadletters.index import DeadLetterIndex
from shared.deadletters.model import Filters, Summary, parse_duration
from shared.deadletters.operations import DeadLetterOps, OpsConfig
from shared.deadletters.pages import Group, GroupQuery
from shared.errors import ConfigurationError, SharedError
from shared.logging_setup import configure_logging
from shared.settings import load_settings

T = TypeVar("T")


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def _run(work: Callable[[DeadLetterOps], Awaitable[T]], *, audited: bool) -> T:
    """Build the clients for one command (the CLI's wiring point), run it, close them."""
    try:
        settings = load_settings(DlqSettings)
    except ConfigurationError as exc:
        _fail(f"bad configuration: {exc}", 2)
        raise

    async def main() -> T:
        config = OpsConfig(
            amqp_url=settings.amqp_url,
            connect_timeout=settings.amqp_connect_timeout,
            publish_timeout=settings.amqp_publish_timeout,
            batch_size=settings.dlq_batch_size,
            idle_timeout=settings.dlq_idle_timeout,
        )
        if not audited:
            return await work(DeadLetterOps(config))
        pool = await create_pool(
            settings.database_url,
            max_size=settings.db_pool_size,
            command_timeout=settings.db_command_timeout,
            connect_timeout=settings.db_acquire_timeout,
        )
        try:
            audit = AuditStore(pool, settings.db_acquire_timeout, migrate=settings.migrate_on_start)
            return await work(DeadLetterOps(config, audit))
        finally:
            await asyncio.wait_for(pool.close(), settings.db_acquire_timeout)

    try:
        return asyncio.run(main())
    except (UnknownQueue, InvalidRequest) as exc:
        _fail(str(exc), 2)
    except (DlqError, SharedError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted; messages not yet confirmed stay in the dead-letter queue", 130)
    raise AssertionError("unreachable")


def _actor() -> str:
    configured = load_settings(DlqSettings).dlq_actor
    return configured or f"cli:{getpass.getuser()}@{socket.gethostname()}"


def _finish(summary: Summary, started: float, as_json: bool) -> None:
    render.summary_line(summary, started, as_json)
    if not summary.ok:
        _fail(summary.error or f"{summary.failed} message(s) failed and stay in the queue")


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
    infos = _run(lambda ops: ops.list_queues(), audited=False)
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
    messages = _run(lambda ops: ops.show(queue, limit), audited=False)
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
        _fail("give either --all or --id, not both", 2)
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
        _fail(str(exc), 2)
    except ValidationError as exc:  # a value Filters refuses: a NUL, a --limit past 2**31-1
        _fail("; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors()), 2)
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
        summary = _run(
            lambda ops: ops.replay(
                queue, filters, actor=_actor(), rate=rate, dry_run=dry_run, progress=progress
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
        _fail("purge declined; nothing discarded")
    progress = render.ProgressBar(f"purging {queue}")
    started = time.monotonic()
    try:
        summary = _run(
            lambda ops: ops.purge(queue, filters, actor=_actor(), progress=progress), audited=True
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
    entries = _run(lambda ops: ops.history(limit, queue), audited=True)
    if as_json:
        render.print_json(entries)
    else:
        render.audit_entries(entries)


@dlq.command()
@click.option("--consumer", help="Only this consumer's groups.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def groups(consumer: str | None, as_json: bool) -> None:
    """Re-read every dead-letter queue, then its failure groups (as the console shows them).

    Replay one with `bookingctl dlq replay QUEUE --fingerprint F`."""

    async def read(ops: DeadLetterOps) -> list[Group]:
        assert ops.audit is not None  # audited=True
        failure_groups = FailureGroups(ops, DeadLetterIndex(ops.audit.pool, ops.audit))
        await failure_groups.sync()
        return await failure_groups.index.groups(GroupQuery(consumer=consumer, limit=200))

    found = _run(read, audited=True)
    if as_json:
        render.print_json(found)
    else:
        render.groups_table(found)
