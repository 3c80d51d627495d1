"""The per-booking notification feed over HTTP (a small Starlette app).

* ``GET /feeds/{booking_id}``: Server-Sent Events. Each notification is an
  ``event: notification`` with ``id:`` = its row id and its JSON as ``data:``; send
  ``Last-Event-ID`` (or ``?last_event_id=``) to resume after that id. Idle streams get a
  comment heartbeat. Live updates come from the hub (PostgreSQL LISTEN/NOTIFY).
* ``GET /feeds/{booking_id}/history``: every notification of the booking as JSON.

A booking this service does not know is 404 on both: it knows a booking once it has
notified something about it (a row in ``notification.notifications``, written when it handles
the booking's first event, normally well under a second after the booking). Streams are
capped per client address and in total (:mod:`services.notification.feed_limits`): 429 or 503
with ``Retry-After`` beyond.

The booking id (a random UUID) is the only credential: put an authenticating proxy in front
before exposing this beyond a trusted network.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import UUID

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from services.notification.feed_hub import LISTENER_ERRORS, FeedHub
from services.notification.feed_limits import StreamSlots
from shared.db.pool import acquire
from shared.errors import DatabaseUnavailable
from shared.http import problems

log = logging.getLogger(__name__)

PAGE = 500
RETRY_MS = 2000  # how long an EventSource waits before reconnecting
MAX_ID = 2**63 - 1
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
READ_ERRORS: tuple[type[BaseException], ...] = (DatabaseUnavailable, *LISTENER_ERRORS)
RETRY_AFTER_SECONDS = 5  # when a stream over a cap may be tried again
UNKNOWN = "no such booking (or nothing notified about it yet)"


class HeldStream(StreamingResponse):
    """A stream that gives its slot back however it ends: finished, the client gone, or
    cancelled at shutdown (the generator's own ``finally`` never runs if it never began)."""

    def __init__(self, content: AsyncIterator[str], release: Callable[[], None]) -> None:
        super().__init__(content, media_type="text/event-stream", headers=SSE_HEADERS)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


async def is_known(pool: asyncpg.Pool, booking_id: UUID, *, timeout: float = 5.0) -> bool:
    """Whether this service has notified anything about the booking."""
    async with acquire(pool, timeout) as conn:
        known: bool = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM notification.notifications WHERE booking_id = $1)",
            booking_id,
        )
    return known


def over_cap(refusal: str) -> Response:
    if refusal == "client":
        detail, status = "too many feed streams from this address", 429
    else:
        detail, status = "too many feed streams open; try again shortly", 503
    return problems.response(status, detail, {"Retry-After": str(RETRY_AFTER_SECONDS)})


async def notifications_after(
    pool: asyncpg.Pool, booking_id: UUID, after: int, *, timeout: float = 5.0
) -> list[dict[str, Any]]:
    """The booking's notifications with an id above ``after``, oldest first."""
    async with acquire(pool, timeout) as conn:
        rows = await conn.fetch(
            "SELECT id, event_id, booking_id, event_type, message, created_at "
            "FROM notification.notifications WHERE booking_id = $1 AND id > $2 "
            "ORDER BY id LIMIT $3",
            booking_id,
            after,
            PAGE,
        )
    return [
        {
            "id": row["id"],
            "event_id": str(row["event_id"]),
            "booking_id": str(row["booking_id"]),
            "event_type": row["event_type"],
            "message": row["message"],
            "created_at": row["created_at"].isoformat(),
        }
        for row in rows
    ]


def sse_message(notification: dict[str, Any]) -> str:
    # json.dumps escapes newlines, so the data fits on one "data:" line.
    data = json.dumps(notification, separators=(",", ":"))
    return f"id: {notification['id']}\nevent: notification\ndata: {data}\n\n"


def last_event_id(request: Request) -> int | None:
    """The id to resume after (0 = from the start), or None when it is malformed."""
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if not raw:
        return 0
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_ID:
        return None
    return int(raw)


async def sse_stream(
    hub: FeedHub, pool: asyncpg.Pool, booking_id: UUID, after: int, heartbeat: float
) -> AsyncIterator[str]:
    # Subscribe before the first query: a notification committed in between wakes us.
    with hub.subscribe(booking_id) as wake:
        yield f"retry: {RETRY_MS}\n\n"
        while not hub.closed:
            wake.clear()
            try:
                rows = await notifications_after(pool, booking_id, after)
            except READ_ERRORS as exc:
                # End the stream; the client reconnects with Last-Event-ID.
                log.warning("feed %s: cannot read notifications: %r", booking_id, exc)
                return
            for row in rows:
                yield sse_message(row)
                after = row["id"]
            if len(rows) == PAGE:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), heartbeat)
            if not wake.is_set():
                yield ": heartbeat\n\n"


def create_feed_app(
    hub: FeedHub,
    pool: asyncpg.Pool,
    *,
    heartbeat: float = 15.0,
    slots: StreamSlots | None = None,
) -> Starlette:
    slots = slots or StreamSlots(per_client=20, total=1000)

    async def feed(request: Request) -> Response:
        after = last_event_id(request)
        if after is None:
            return problems.response(400, "Last-Event-ID must be a row id")
        booking_id: UUID = request.path_params["booking_id"]
        release = slots.take(request.client.host if request.client else "")
        if isinstance(release, str):
            return over_cap(release)
        known = False
        try:
            known = await is_known(pool, booking_id)
        finally:
            if not known:  # 404, or the database failed (503): no stream holds the slot
                release()
        if not known:
            return problems.response(404, UNKNOWN)
        return HeldStream(sse_stream(hub, pool, booking_id, after, heartbeat), release)

    async def history(request: Request) -> Response:
        booking_id: UUID = request.path_params["booking_id"]
        if not await is_known(pool, booking_id):
            return problems.response(404, UNKNOWN)
        notifications: list[dict[str, Any]] = []
        while True:
            after = notifications[-1]["id"] if notifications else 0
            page = await notifications_after(pool, booking_id, after)
            notifications += page
            if len(page) < PAGE:
                break
        return JSONResponse({"booking_id": str(booking_id), "notifications": notifications})

    async def unavailable(_request: Request, exc: Exception) -> Response:
        log.warning("feed: database unavailable: %r", exc)
        return problems.response(503, "database unavailable", {"Retry-After": "1"})

    return Starlette(
        routes=[
            Route("/feeds/{booking_id:uuid}", feed, methods=["GET"]),
            Route("/feeds/{booking_id:uuid}/history", history, methods=["GET"]),
        ],
        exception_handlers={DatabaseUnavailable: unavailable},
    )
