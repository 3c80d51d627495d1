"""The email process: the shared consumer process plus what only this service holds, the
SMTP connection pool and the thread that renders and composes emails."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from services.email.smtp import SmtpSender
from shared.consumer_service import ConsumerProcess


@dataclass
class EmailProcess(ConsumerProcess):
    sender: SmtpSender
    render: ThreadPoolExecutor

    @classmethod
    def extend(
        cls, base: ConsumerProcess, *, sender: SmtpSender, render: ThreadPoolExecutor
    ) -> EmailProcess:
        shared = {f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init}
        return cls(**shared, sender=sender, render=render)

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            try:
                await self.sender.close()
            finally:
                # Nothing is queued by now (the consumer has stopped): no need to wait.
                self.render.shutdown(wait=False, cancel_futures=True)
