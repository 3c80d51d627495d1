"""Failure groups: the operations the dead-letter console, the admin API and ``bookingctl``
share on top of the index (index.py) and the queue operations (operations.py).

Retrying a group replays, from the broker's dead-letter queue, every message whose
fingerprint is the group's (the same audited replay as ``bookingctl dlq replay``): the
index only says which queue to read, the broker's messages decide what moves. The queue is
synced into the index afterwards.
"""

from __future__ import annotations

import logging
from datetime import datetime

from shared.deadletters import reading
from shared.deadletters.errors import DlqError, InvalidRequest, UnknownGroup
from shared.deadletters.index import DeadLetterIndex
from shared.deadletters.model import Filters, Summary
from shared.deadletters.operations import DeadLetterOps
from shared.deadletters.pages import Group
from shared.deadletters.sweep import Progress
from shared.messaging.topology import CONSUMERS

log = logging.getLogger(__name__)
# A queue whose depth differs from its index rows is synced on sight up to this depth; a
# deeper one waits for an explicit sync (it takes ~1 s per few thousand messages).
AUTO_SYNC_LIMIT = 10_000
STATE_OPERATIONS = {"muted": "mute", "archived": "archive", None: "restore"}


class FailureGroups:
    def __init__(
        self, ops: DeadLetterOps, index: DeadLetterIndex, management_url: str | None = None
    ) -> None:
        self.ops, self.index, self.management_url = ops, index, management_url

    async def sync(self, queues: list[str] | None = None) -> dict[str, int]:
        """Read ``queues`` (every dead-letter queue by default) into the index."""
        names = queues or [n.dead_letter_queue for n in CONSUMERS.values()]
        return {queue: await reading.sync(self.ops, self.index, queue) for queue in names}

    async def sync_stale(self) -> list[str]:
        """Sync the queues whose depth differs from their index rows (small ones only);
        the queues left out of date because they are too deep."""
        indexed = await self.index.counts()
        stale: list[str] = []
        too_deep: list[str] = []
        for info in await self.ops.list_queues():
            if info.messages != indexed.get(info.queue, 0):
                (stale if info.messages <= AUTO_SYNC_LIMIT else too_deep).append(info.queue)
        if stale:
            await self.sync(stale)
        return too_deep

    async def group(self, fingerprint: str) -> Group:
        found = await self.index.group(fingerprint)
        if found is None:
            raise UnknownGroup(
                f"no failure group {fingerprint!r} in the index; sync and look again"
            )
        return found

    async def retry(
        self,
        fingerprint: str,
        *,
        actor: str,
        dry_run: bool = False,
        rate: float | None = None,
        ids: tuple[str, ...] = (),
        progress: Progress | None = None,
    ) -> list[Summary]:
        """Replay the group's messages (or those of ``ids`` in it) to their consumer."""
        group = await self.group(fingerprint)
        summaries = []
        for queue in group.queues:
            filters = Filters(fingerprint=fingerprint, ids=ids)
            summaries.append(
                await self.ops.replay(
                    queue, filters, actor=actor, rate=rate, dry_run=dry_run, progress=progress
                )
            )
            if not dry_run:
                await self._resync(queue)
        return summaries

    async def purge(self, fingerprint: str, *, actor: str, confirm: str) -> list[Summary]:
        """Discard the group's messages; ``confirm`` must be the group's fingerprint."""
        group = await self.group(fingerprint)
        if confirm != fingerprint:
            raise InvalidRequest("type the group's fingerprint to confirm the purge")
        summaries = []
        for queue in group.queues:
            summaries.append(
                await self.ops.purge(queue, Filters(fingerprint=fingerprint), actor=actor)
            )
            await self._resync(queue)
        return summaries

    async def set_state(
        self, fingerprint: str, state: str | None, *, actor: str, until: datetime | None = None
    ) -> None:
        """Mute (until ``until``), archive or restore a group; audited."""
        group = await self.group(fingerprint)
        operation = STATE_OPERATIONS[state]
        audit = self.ops.audit
        filters = Filters(fingerprint=fingerprint)
        queue = group.queues[0]
        audit_id = None
        if audit is not None:
            audit_id = await audit.started(
                actor=actor, operation=operation, queue=queue, filters=filters, dry_run=False
            )
        await self.index.set_state(fingerprint, state, actor, until)
        if audit is not None and audit_id is not None:
            await audit.finished(audit_id, Summary(operation=operation, queue=queue))

    async def live(self) -> list[reading.ConsumerState]:
        return await reading.live_state(self.ops, self.management_url)

    async def _resync(self, queue: str) -> None:
        # The messages have moved: a failed sync leaves the index stale, not the retry failed.
        try:
            await self.sync([queue])
        except DlqError as exc:
            log.warning("%s moved but not re-read into the index: %s", queue, exc)
