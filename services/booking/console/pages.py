"""The console's pages (GET): sign-in, failure groups, a group's messages, one message, the
audit log, and the live state fragment the groups page polls."""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from services.booking.api.admin import translated
from services.booking.console.session import Session
from services.booking.deps import ConsoleDep, FailureGroupsDep, PoolDep, SettingsDep
from services.booking.fulfilment import progress_of
from shared.deadletters.model import NO_CONTROL_PATTERN
from shared.deadletters.pages import FINGERPRINT_PATTERN, GroupQuery, MessageQuery, group_cursor

HERE = FilePath(__file__).parent
STATIC = {
    "htmx.js": ("htmx-2.0.11.min.js", "text/javascript"),
    "console.css": ("console.css", "text/css"),
}
# Nothing from elsewhere: scripts, styles and requests to this server only.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: under no-referrer Chromium sends "Origin: null" with
    # the page's own form posts, which the origin check (session.py) must refuse.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
SPARKS = "▁▂▃▄▅▆▇█"

router = APIRouter(prefix="/admin/console", include_in_schema=False)
templates = Jinja2Templates(directory=HERE / "templates")


def sparkline(counts: list[int]) -> str:
    top = max(counts, default=0)
    if top == 0:
        return SPARKS[0] * len(counts)
    return "".join(SPARKS[min(7, (n * 8 - 1) // top)] if n else SPARKS[0] for n in counts)


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


templates.env.filters["sparkline"] = sparkline
templates.env.filters["when"] = when


def render(
    request: Request,
    name: str,
    session: Session | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    context = {"session": session, "csrf": session.csrf if session else "", **context}
    return templates.TemplateResponse(
        request, name, context, status_code=status_code, headers=SECURITY_HEADERS
    )


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC:
        raise HTTPException(404, f"no console asset called {name!r}")
    filename, media_type = STATIC[name]
    return FileResponse(HERE / "static" / filename, media_type=media_type)


@router.get("/login")
async def login_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    if not settings.admin_enabled:
        raise HTTPException(503, "admin API disabled: set ADMIN_TOKEN")
    return render(request, "login.html", None)


@router.get("")
async def groups_page(
    request: Request,
    session: ConsoleDep,
    groups: FailureGroupsDep,
    consumer: Annotated[str | None, Query(max_length=100, pattern=NO_CONTROL_PATTERN)] = None,
    hidden: bool = False,
    after: Annotated[str | None, Query(max_length=200, pattern=NO_CONTROL_PATTERN)] = None,
) -> HTMLResponse:
    # Small queues that changed since the last look are read again; deep ones are named.
    query = GroupQuery(consumer=consumer or None, include_hidden=hidden, after=after)
    with translated():
        too_deep = await groups.sync_stale()
        found = await groups.index.groups(query)
    return render(
        request,
        "groups.html",
        session,
        groups=found,
        too_deep=too_deep,
        consumer=consumer or "",
        hidden=hidden,
        next_cursor=group_cursor(found, query.limit),
        consumers=sorted({g.consumer for g in found} | ({consumer} if consumer else set())),
    )


@router.get("/live")
async def live_fragment(
    request: Request, session: ConsoleDep, groups: FailureGroupsDep
) -> HTMLResponse:
    with translated():
        states = await groups.live()
    return render(request, "live.html", session, states=states)


@router.get("/groups/{fingerprint}")
async def group_page(
    request: Request,
    session: ConsoleDep,
    groups: FailureGroupsDep,
    fingerprint: Annotated[str, Path(pattern=FINGERPRINT_PATTERN)],
    booking_id: Annotated[str | None, Query(max_length=100, pattern=NO_CONTROL_PATTERN)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    event_type: Annotated[str | None, Query(max_length=100, pattern=NO_CONTROL_PATTERN)] = None,
    text: Annotated[str | None, Query(max_length=200, pattern=NO_CONTROL_PATTERN)] = None,
    after: Annotated[str | None, Query(max_length=200, pattern=NO_CONTROL_PATTERN)] = None,
) -> HTMLResponse:
    with translated():
        group = await groups.group(fingerprint)
        query = MessageQuery(
            fingerprint=fingerprint,
            booking_id=booking_id or None,
            since=since,
            until=until,
            event_type=event_type or None,
            text=text or None,
            after=after or None,
        )
        page = await groups.index.messages(query)
    return render(request, "group.html", session, group=group, page=page, query=query)


@router.get("/messages/{row_id}")
async def message_page(
    request: Request, session: ConsoleDep, groups: FailureGroupsDep, pool: PoolDep, row_id: int
) -> HTMLResponse:
    with translated():
        message = await groups.index.message(row_id)
        if message is None:
            raise HTTPException(404, f"no indexed dead letter {row_id}: it left its queue")
        parkings = await groups.index.parkings(message.message_id) if message.message_id else []
    fulfilment = None
    with contextlib.suppress(ValueError, TypeError):
        booking = UUID(message.booking_id or "")
        async with pool.acquire() as conn:
            fulfilment = await progress_of(conn, booking)
    return render(
        request,
        "message.html",
        session,
        message=message,
        parkings=parkings,
        fulfilment=fulfilment,
    )


@router.get("/audit")
async def audit_page(
    request: Request,
    session: ConsoleDep,
    groups: FailureGroupsDep,
    queue: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9._:-]{0,255}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> HTMLResponse:
    with translated():
        entries = await groups.ops.history(limit, queue or None)
    return render(request, "audit.html", session, entries=entries, queue=queue or "")
