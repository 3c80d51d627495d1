"""RFC 9457 problem details (``application/problem+json``), the shape of every HTTP error
this system answers: the booking API's (services/booking/api/problems.py installs them for
every route) and the notification feed's."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse

MEDIA_TYPE = "application/problem+json"
# Problem types are tag URIs (RFC 4151): names, never fetched. RFC 9457 suggests them for
# types without a page of their own; "about:blank" is a plain HTTP error (title: its phrase).
TYPE_PREFIX = "tag:hotel-booking.example,2026:problem:"
BLANK = "about:blank"


def body(
    status: int,
    detail: str,
    *,
    problem: str | None = None,
    title: str | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    """The problem document; ``problem``: the type's name (after TYPE_PREFIX)."""
    return {
        "type": f"{TYPE_PREFIX}{problem}" if problem else BLANK,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extensions,
    }


def response(
    status: int, detail: str, headers: dict[str, str] | None = None, **fields: Any
) -> JSONResponse:
    return JSONResponse(
        body(status, detail, **fields), status_code=status, headers=headers, media_type=MEDIA_TYPE
    )


def encoded(status: int, detail: str) -> bytes:
    """The body of a problem sent by ASGI middleware, outside an app's handlers."""
    return json.dumps(body(status, detail)).encode()
