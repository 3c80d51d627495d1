"""``bookingctl dlq groups``, ``canary`` and ``group-state``: the dead-letter console's
failure groups on the command line (the same library, shared/deadletters/groups.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from services.bookingctl import render
from services.bookingctl.running import actor, fail, run
from shared.deadletters.canary import CanaryReport, canary_retry
from shared.deadletters.groups import FailureGroups
from shared.deadletters.index import DeadLetterIndex
from shared.deadletters.operations import DeadLetterOps
from shared.deadletters.pages import Group, GroupQuery


def _groups(ops: DeadLetterOps) -> FailureGroups:
    assert ops.audit is not None  # run(..., audited=True)
    return FailureGroups(ops, DeadLetterIndex(ops.audit.pool, ops.audit))


@click.command()
@click.option("--consumer", help="Only this consumer's groups.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def groups(consumer: str | None, as_json: bool) -> None:
    """Re-read every dead-letter queue, then list its failure groups (as the console does).

    Replay one with `bookingctl dlq replay QUEUE --fingerprint F`."""

    async def read(ops: DeadLetterOps) -> list[Group]:
        failure_groups = _groups(ops)
        await failure_groups.sync()
        return await failure_groups.index.groups(GroupQuery(consumer=consumer, limit=200))

    found = run(read, audited=True)
    if as_json:
        render.print_json(found)
    else:
        render.groups_table(found)


@click.command()
@click.argument("fingerprint")
@click.option("--settle", default=10.0, show_default=True, help="Seconds to watch each stage.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), help="Messages/s at most.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def canary(fingerprint: str, settle: float, rate: float | None, as_json: bool) -> None:
    """Retry a failure group 1, 5, 50, then the rest; halt when a stage fails again."""

    async def work(ops: DeadLetterOps) -> CanaryReport:
        return await canary_retry(
            _groups(ops), fingerprint, actor=actor(), settle=settle, rate=rate
        )

    report = run(work, audited=True)
    if as_json:
        render.print_json(report)
    else:
        sent = ", ".join(str(s.replayed) for s in report.stages)
        click.echo(f"canary {fingerprint}: stages sent {sent or 'nothing'}")
    if report.halted:
        fail(f"halted: {len(report.failed_again)} message(s) failed again after their retry")


@click.command("group-state")
@click.argument("fingerprint")
@click.argument("state", type=click.Choice(["muted", "archived", "restore"]))
@click.option("--hours", default=24, show_default=True, type=click.IntRange(1, 24 * 90))
def group_state(fingerprint: str, state: str, hours: int) -> None:
    """Mute a failure group (for --hours), archive it, or restore it."""
    until = datetime.now(UTC) + timedelta(hours=hours) if state == "muted" else None

    async def work(ops: DeadLetterOps) -> None:
        chosen = None if state == "restore" else state
        await _groups(ops).set_state(fingerprint, chosen, actor=actor(), until=until)

    run(work, audited=True)
    click.echo(f"{fingerprint}: {state}")
