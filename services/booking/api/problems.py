"""Every error of the booking API as an RFC 9457 problem: ``application/problem+json`` with
``type``, ``title``, ``status`` and ``detail``, plus ``errors`` (one item per refused field)
for a request the schema refuses.

Done in one place, so a route added later answers its errors the same way without a line
of its own: the exception handlers (:func:`install`) shape every error the app raises (its
own, FastAPI's validation, Starlette's HTTP errors, an unreachable database, a bug), and
:func:`document` rewrites every 4xx and 5xx response of the OpenAPI document to this media
type and schema (adding the 400 and 413 any operation with a body can answer).
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from services.booking.access_log import route_path
from services.booking.errors import BookingServiceError, RateLimited, TokenRequired
from shared.db.pool import UNAVAILABLE_ERRORS
from shared.deadletters.model import Summary
from shared.errors import DatabaseUnavailable
from shared.http.problems import BLANK, TYPE_PREFIX, response

log = logging.getLogger(__name__)
UNREADABLE = "There was an error parsing the body"


class FieldError(BaseModel):
    """One refused field, as pydantic and FastAPI report it."""

    type: str = Field(description="pydantic's error type, e.g. missing, value_error")
    loc: list[str | int] = Field(description='Where: e.g. ["body", "check_in"]')
    msg: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (application/problem+json)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": f"{TYPE_PREFIX}no-availability",
                    "title": "No room free for the whole stay",
                    "status": 409,
                    "detail": "no standard room is free at hotel 1 for the whole stay ...",
                }
            ]
        }
    )

    type: str = Field(
        default=BLANK,
        description="A URI naming the kind of problem: about:blank for a plain HTTP error",
    )
    title: str = Field(description="A short summary of the kind of problem")
    status: int = Field(ge=400, le=599, description="The HTTP status code")
    detail: str = Field(description="What went wrong with this request, in a sentence")
    errors: list[FieldError] | None = Field(
        default=None, description="The refused fields, when the request's shape is wrong"
    )


async def booking_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BookingServiceError)
    headers = {}
    if isinstance(exc, TokenRequired):
        # RFC 9110 wants a challenge with a 401; FastAPI's API key schemes say "APIKey".
        headers["WWW-Authenticate"] = "APIKey"
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    return response(exc.status, str(exc), headers, problem=exc.problem, title=exc.title)


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """A 422 with every issue under ``errors``. Non-finite numbers are written as text:
    Python's JSON parser takes ``NaN`` and ``Infinity``, and echoing such an input back made
    the answer unserialisable (a 500)."""
    assert isinstance(exc, RequestValidationError)
    issues = _finite(jsonable_encoder(exc.errors()))
    return response(
        422, summary(issues), problem="invalid-request", title="Invalid request", errors=issues
    )


def summary(issues: list[dict[str, Any]]) -> str:
    """One sentence for ``detail``: the first issue, and how many more there are."""
    if not issues:
        return "the request is invalid"
    first = issues[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "request"
    more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's and FastAPI's own HTTP errors (an unknown path, a wrong method, a body
    that cannot be read, the admin API's refusals), with their headers (Allow, ...)."""
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    if detail == UNREADABLE:  # FastAPI's words for a body it cannot decode (not UTF-8, ...)
        detail = "the body cannot be read: send JSON, encoded as UTF-8"
    return response(exc.status_code, detail, dict(exc.headers or {}))


async def unavailable(request: Request, exc: Exception) -> JSONResponse:
    where = route_path(request.scope)  # the template: no booking id in the log
    log.warning("database unavailable during %s %s: %r", request.method, where, exc)
    return response(
        503,
        "the database is unavailable; try again shortly",
        {"Retry-After": "1"},
        problem="database-unavailable",
        title="Database unavailable",
    )


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug: logged with its traceback (Starlette re-raises it for the server's log too);
    the client learns nothing of it but that it happened."""
    return response(500, "an unexpected error; it has been logged", problem="internal-error")


def install(app: FastAPI) -> None:
    app.add_exception_handler(BookingServiceError, booking_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)
    unavailable_errors: tuple[type[BaseException], ...] = (DatabaseUnavailable, *UNAVAILABLE_ERRORS)
    for error in unavailable_errors:
        if issubclass(error, Exception):
            app.add_exception_handler(error, unavailable)
    app.add_exception_handler(Exception, internal_error)


def _finite(value: Any) -> Any:
    """The value with every non-finite number written as text ("inf", "nan")."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_finite(item) for item in value]
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value


class SweepProblem(Problem):
    """An admin operation's problem; when a replay or purge failed part-way, with its
    ``summary`` (what was done before the broker failed)."""

    summary: Summary | None = Field(default=None, description="What was done before it failed")


def sweep_failed(summary: Summary) -> JSONResponse:
    """503 with the summary of a replay or purge the broker failed part-way."""
    detail = summary.error or f"the broker did not confirm {summary.failed} messages"
    return response(
        503,
        f"{summary.operation} stopped part-way: {detail}",
        problem="sweep-incomplete",
        title="Stopped part-way",
        summary=summary.model_dump(mode="json"),
    )
