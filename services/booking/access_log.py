"""The booking API's access log, in place of uvicorn's.

uvicorn's access log prints each request's path, and a path like
``/bookings/3f2b…/cancel`` names a booking. Here a request is logged by its route's
template (``POST /bookings/{booking_id}/cancel``), without the query string; a path no
route matches (scanners, typos) is logged with anything that looks like an id or a token
masked. Request headers, and so management tokens, are never logged.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("booking.access")
# UUIDs, and long runs of the URL-safe alphabet tokens are made of.
_OPAQUE = re.compile(r"[0-9a-fA-F]{8}(?:-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}|[\w-]{20,}")


def route_path(scope: MutableMapping[str, Any]) -> str:
    """The matched route's template, or the path with ids and tokens masked."""
    template = getattr(scope.get("route"), "path", None)
    if isinstance(template, str):
        return template
    return _OPAQUE.sub("…", str(scope.get("path", "")))


class AccessLog:
    """One INFO line per HTTP request, once it is answered: client, method, route, status
    and duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            client = scope.get("client")
            log.info(
                '%s - "%s %s HTTP/%s" %d %.1f ms',
                f"{client[0]}:{client[1]}" if client else "-",
                scope["method"],
                route_path(scope),
                scope.get("http_version", "1.1"),
                status,
                (time.perf_counter() - started) * 1000,
            )
