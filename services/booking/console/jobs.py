"""Retries the console runs in the background, so the page can show their progress: the
request that starts one answers at once with a fragment that polls the job until it ends.

Jobs live in the booking process's memory (a restart forgets them; the audit log keeps
every run). A job cut short by shutdown is cancelled like an interrupted ``bookingctl``:
what was not yet confirmed stays in the dead-letter queue, and its audit row is completed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from shared.deadletters.errors import DlqError
from shared.deadletters.model import Summary
from shared.deadletters.sweep import Progress

log = logging.getLogger(__name__)
KEEP = 100  # finished jobs remembered, for a page that polls late
Work = Callable[[Progress], Awaitable[list[Summary]]]


@dataclass
class Job:
    id: str
    fingerprint: str
    label: str  # what the page says while it runs: "Retrying", "Dry run"
    progress: Summary | None = None
    summaries: list[Summary] = field(default_factory=list)
    error: str | None = None
    task: asyncio.Task[None] | None = None

    @property
    def done(self) -> bool:
        return self.task is not None and self.task.done()


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    def start(self, fingerprint: str, label: str, work: Work) -> Job:
        job = Job(secrets.token_urlsafe(12), fingerprint, label)

        def progress(summary: Summary) -> None:
            job.progress = summary.model_copy()

        async def run() -> None:
            try:
                job.summaries = await work(progress)
            except DlqError as exc:
                job.error = str(exc)
            except Exception:  # unforeseen: said in the log, and on the page
                log.exception("console job %s failed", job.id)
                job.error = "the retry failed unexpectedly; the log says why"

        job.task = asyncio.create_task(run(), name=f"console-job-{job.id}")
        self._jobs[job.id] = job
        self._forget_old()
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    async def close(self) -> None:
        running = [j.task for j in self._jobs.values() if j.task and not j.task.done()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.done]
        for job in finished[: max(0, len(finished) - KEEP)]:
            del self._jobs[job.id]
