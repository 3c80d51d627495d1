"""Canary retry of a failure group: 1 message, then 5, then 50, then the rest, each stage
only after the one before it did not fail again.

After each stage the dead-letter queue is watched for ``settle`` seconds: when it grows,
the queue is read again and the stage's messages found back in it (retried, failed again:
they carry ``x-replay-count``, which the console marks) halt the canary; the group's other
messages stay where they are. Each stage is an audited replay of its own.
"""

from __future__ import annotations

import asyncio
import time

from aio_pika.abc import AbstractConnection
from pydantic import BaseModel, Field

from shared.deadletters import broker
from shared.deadletters.groups import FailureGroups
from shared.deadletters.model import Filters, Summary
from shared.deadletters.operations import resolve
from shared.messaging.connection import close_quietly

STAGES: tuple[int | None, ...] = (1, 5, 50, None)  # None: the rest
POLL = 0.5


class CanaryReport(BaseModel):
    fingerprint: str
    stages: list[Summary] = Field(default_factory=list)
    halted: bool = False
    failed_again: list[str] = Field(
        default_factory=list, description="Message ids back in the dead-letter queue"
    )


async def canary_retry(
    groups: FailureGroups,
    fingerprint: str,
    *,
    actor: str,
    settle: float = 10.0,
    rate: float | None = None,
    stages: tuple[int | None, ...] = STAGES,
) -> CanaryReport:
    group = await groups.group(fingerprint)
    queue = resolve(group.queues[0]).dead_letter_queue  # a fingerprint names one consumer
    report = CanaryReport(fingerprint=fingerprint)
    connection = await groups.ops.connect("canary")
    try:
        for size in stages:
            # Counted before the replay: a message that fails again at once can be back
            # before the replay returns, and a count taken after it would miss it.
            before = await broker.depth(connection, queue, groups.ops.config.connect_timeout)
            sent: list[str] = []
            filters = Filters(fingerprint=fingerprint, limit=size)
            summary = await groups.ops.replay(queue, filters, actor=actor, rate=rate, sent=sent)
            report.stages.append(summary)
            if not summary.ok or not sent:
                break
            back = await _failed_again(groups, connection, queue, sent, before, settle)
            if back:
                report.halted, report.failed_again = True, back
                break
            if size is None or len(sent) < size:  # the group is used up
                break
    finally:
        await close_quietly(connection)
    await groups.sync([queue])
    return report


async def _failed_again(
    groups: FailureGroups,
    connection: AbstractConnection,
    queue: str,
    sent: list[str],
    before: int,
    settle: float,
) -> list[str]:
    """The ids of ``sent`` back in ``queue`` within ``settle`` seconds; ``before``: the
    queue's depth before they were taken out of it."""
    timeout = groups.ops.config.connect_timeout
    emptied = before - len(sent)  # the depth once the stage left, had nothing come back
    deadline = time.monotonic() + settle
    grew = False
    while time.monotonic() < deadline:
        now = await broker.depth(connection, queue, timeout)
        if now >= before:  # every one came back: no need to wait longer
            grew = True
            break
        grew = grew or now > emptied
        await asyncio.sleep(POLL)
    if not grew:
        return []
    await groups.sync([queue])
    return await groups.index.present(queue, sent)
