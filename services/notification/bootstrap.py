"""Wiring for the notification process: the one place its clients are built."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from pathlib import Path

import asyncpg
import httpx
from starlette.routing import Mount

from services.notification.delivery import Deliverer
from services.notification.feed import create_feed_app
from services.notification.feed_hub import FeedHub
from services.notification.feed_limits import StreamSlots
from services.notification.handlers import notify
from services.notification.settings import NotificationSettings
from shared import building
from shared.consumer_service import ConsumerProcess, build_consumer_process
from shared.events import BookingCancelled, BookingConfirmed
from shared.messaging.handlers import Handler, route
from shared.process import Parts

SERVICE = "notification"
MIGRATIONS = Path(__file__).parent / "migrations"
RECORDS_POOL_SIZE = 4
FEED_POOL_SIZE = 4
USER_AGENT = "hotel-booking-notification/1"

log = logging.getLogger(__name__)


def make_handlers(settings: NotificationSettings, deliverer: Deliverer) -> dict[str, Handler]:
    handler = partial(notify, deliverer=deliverer)
    return dict([route(BookingConfirmed, handler), route(BookingCancelled, handler)])


def make_deliverer(
    settings: NotificationSettings, client: httpx.AsyncClient, records: asyncpg.Pool
) -> Deliverer:
    return Deliverer(
        client,
        records,
        secret=settings.notification_webhook_secret.get_secret_value(),
        webhook_urls=settings.webhook_urls,
        ntfy_url=settings.ntfy_url,
        timeout=settings.notification_timeout,
        acquire_timeout=settings.db_acquire_timeout,
    )


async def bootstrap(
    settings: NotificationSettings,
    *,
    handlers: dict[str, Handler] | None = None,
    pool: asyncpg.Pool | None = None,
) -> ConsumerProcess:
    parts = Parts()
    async with parts.building():
        http = parts.closes(
            httpx.AsyncClient(
                timeout=settings.notification_timeout,
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT},
            ),
            httpx.AsyncClient.aclose,
        )
        # Small pools of their own for delivery records and for feed reads: never the
        # consumer's pool, where every message in hand already holds a connection for its
        # transaction, and never each other's, so a crowd of feed readers cannot delay
        # recording a delivery.
        records_pool = await building.pool(parts, settings, max_size=RECORDS_POOL_SIZE)
        feed_pool = await building.pool(parts, settings, max_size=FEED_POOL_SIZE)
        if handlers is None:
            handlers = make_handlers(settings, make_deliverer(settings, http, records_pool))
        hub = FeedHub(settings.database_url, connect_timeout=settings.db_acquire_timeout)
        parts.runs("notification-feed-hub", partial(_run_hub, hub))
        slots = StreamSlots(
            per_client=settings.notification_feed_max_streams_per_client,
            total=settings.notification_feed_max_streams,
        )
        feed = create_feed_app(
            hub, feed_pool, heartbeat=settings.notification_feed_heartbeat, slots=slots
        )
        # The feed is served by the process's ops server, beside /health and /metrics.
        process = await build_consumer_process(
            parts, SERVICE, settings, handlers, MIGRATIONS, pool, routes=[Mount("", app=feed)]
        )
    log.info("notification feed on %s/feeds/{booking_id}", process.ops_url)
    _log_configuration(settings)
    return process


async def _run_hub(hub: FeedHub, stop: asyncio.Event) -> None:
    """The feed hub runs until the process stops, and is closed at once then: that ends the
    open feed streams, so the ops server can stop after them."""
    try:
        await hub.run(stop)
    except Exception as exc:  # the feed is a convenience: it never fails the process
        log.warning("notification feed hub: %r while stopping", exc)
    finally:
        hub.close()


def _log_configuration(settings: NotificationSettings) -> None:
    # httpx logs every request URL at INFO, and an ntfy URL holds the booking's secret topic.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    targets = len(settings.webhook_urls) + (1 if settings.ntfy_url else 0)
    log.info(
        "delivering to %d webhook(s)%s",
        len(settings.webhook_urls),
        " and ntfy" if settings.ntfy_url else "",
    )
    if targets and settings.uses_default_secret:
        log.warning(
            "NOTIFICATION_WEBHOOK_SECRET is the default: set a secret of your own before "
            "anyone relies on the signatures or the push topics"
        )
