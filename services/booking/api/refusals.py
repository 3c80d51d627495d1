"""Refusals the request models cannot make on their own, because they depend on a setting or
on two parameters together. Each is a 422 shaped like FastAPI's own validation errors (a
list of issues with ``loc`` and ``msg``), so a client reads every field error the same way."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.booking.schemas import beyond_horizon


def refuse(message: str, value: Any, *location: str) -> RequestValidationError:
    issue = {"type": "value_error", "loc": location, "msg": message, "input": value}
    return RequestValidationError([issue])


def check_horizon(check_in: date, horizon_days: int, *location: str) -> None:
    """BOOKING_HORIZON_DAYS: a stay may start at most that many days from today."""
    reason = beyond_horizon(check_in, horizon_days)
    if reason is not None:
        raise refuse(reason, check_in.isoformat(), *location)


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own 422, made safe to send: Python's JSON parser takes ``NaN`` and
    ``Infinity``, and echoing such an input back made the answer unserialisable (a 500)."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": _finite(jsonable_encoder(exc.errors()))}, status_code=422)


def _finite(value: Any) -> Any:
    """The value with every non-finite number written as text ("inf", "nan")."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_finite(item) for item in value]
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value
