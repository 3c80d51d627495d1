"""The notification process: the shared consumer process, plus the feed server run beside
the consumer and the clients only this service has (HTTP client, two small pools)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass

import asyncpg
import httpx

from services.notification.http_server import FeedServer
from shared.consumer_service import ConsumerProcess

log = logging.getLogger(__name__)


@dataclass
class NotificationProcess(ConsumerProcess):
    feed: FeedServer
    http: httpx.AsyncClient
    # Small pools of their own for delivery records and for feed reads: never the consumer's
    # pool, where every message in hand already holds a connection for its transaction, and
    # never each other's, so a crowd of feed readers cannot delay recording a delivery.
    records_pool: asyncpg.Pool
    feed_pool: asyncpg.Pool

    @classmethod
    def extend(
        cls,
        base: ConsumerProcess,
        *,
        feed: FeedServer,
        http: httpx.AsyncClient,
        records_pool: asyncpg.Pool,
        feed_pool: asyncpg.Pool,
    ) -> NotificationProcess:
        shared = {f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init}
        return cls(**shared, feed=feed, http=http, records_pool=records_pool, feed_pool=feed_pool)

    @property
    def feed_url(self) -> str:
        return self.feed.url

    async def run(self, stop: asyncio.Event) -> None:
        """Consume and serve the feed until ``stop``. If the feed server fails, the whole
        process stops (after the consumer's drain) and the failure propagates."""
        feed = asyncio.create_task(self.feed.serve(stop), name="notification-feed")

        def stop_if_failed(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is not None:
                log.error("notification feed failed: %r; stopping", task.exception())
                stop.set()

        feed.add_done_callback(stop_if_failed)
        try:
            await super().run(stop)
        finally:
            stop.set()
            await feed

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            self.feed.close()
            await self.http.aclose()
            await self.records_pool.close()
            await self.feed_pool.close()
