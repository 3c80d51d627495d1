"""Notification handlers: plain async functions of (event, transaction, named dependencies).

A booking event is delivered to every HTTP target (webhooks, ntfy push), then added to the
booking's feed in the handler's transaction, with a NOTIFY that PostgreSQL delivers to the
feed's listeners at commit (never, if the transaction rolls back).
"""

from __future__ import annotations

from services.notification.delivery import Deliverer
from services.notification.feed_hub import FEED_CHANNEL
from services.notification.notices import BookingEvent, Notice, notice_for
from shared.db.pool import Connection


async def notify(
    event: BookingEvent,
    tx: Connection,
    *,
    deliverer: Deliverer,
) -> None:
    notice = notice_for(event)
    await deliverer.deliver(event, notice, tx)
    await add_to_feed(tx, event, notice)


async def add_to_feed(tx: Connection, event: BookingEvent, notice: Notice) -> int:
    """Insert the notification as the transaction's last step. The per-booking lock (held
    to commit) makes a booking's row ids follow commit order, so a feed reader that has
    seen id N never misses a later-committed row with a smaller id."""
    await tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        f"notification-feed:{event.booking_id}",
    )
    row_id: int = await tx.fetchval(
        "INSERT INTO notification.notifications (event_id, booking_id, event_type, message) "
        "VALUES ($1, $2, $3, $4) RETURNING id",
        event.event_id,
        event.booking_id,
        event.event_type,
        notice.message,
    )
    await tx.execute("SELECT pg_notify($1, $2)", FEED_CHANNEL, str(event.booking_id))
    return row_id
