"""The notification process: the shared consumer process, whose ops HTTP server also serves
the booking feed, plus the feed hub and the clients only this service has (HTTP client, two
small pools)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass

import asyncpg
import httpx

from services.notification.feed_hub import FeedHub
from shared.consumer_service import ConsumerProcess

log = logging.getLogger(__name__)


@dataclass
class NotificationProcess(ConsumerProcess):
    hub: FeedHub
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
        hub: FeedHub,
        http: httpx.AsyncClient,
        records_pool: asyncpg.Pool,
        feed_pool: asyncpg.Pool,
    ) -> NotificationProcess:
        shared = {f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init}
        return cls(**shared, hub=hub, http=http, records_pool=records_pool, feed_pool=feed_pool)

    @property
    def feed_url(self) -> str:
        return self.ops.url

    async def run(self, stop: asyncio.Event) -> None:
        """Consume, serve the feed and run its hub until ``stop``. The hub is closed as soon
        as ``stop`` is set, which ends the open feed streams so the server can stop."""
        log.info("notification feed on %s/feeds/{booking_id}", self.feed_url)
        hub_stop = asyncio.Event()
        hub = asyncio.create_task(self.hub.run(hub_stop), name="notification-feed-hub")

        async def close_hub_on_stop() -> None:
            await stop.wait()
            hub_stop.set()
            self.hub.close()

        closer = asyncio.create_task(close_hub_on_stop())
        try:
            await super().run(stop)
        finally:
            stop.set()
            await closer
            for result in await asyncio.gather(hub, return_exceptions=True):
                if isinstance(result, Exception):
                    log.warning("notification feed hub: %r while stopping", result)

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            await self.http.aclose()
            await self.records_pool.close()
            await self.feed_pool.close()
