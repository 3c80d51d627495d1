"""Refusals the request models cannot make on their own, because they depend on a setting or
on two parameters together. Each is raised as FastAPI's own validation error, so it is
answered the same way (a 422 problem with the field under ``errors``, api/problems.py), and a
client reads every field error alike."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.exceptions import RequestValidationError

from services.booking.schemas import beyond_horizon


def refuse(message: str, value: Any, *location: str) -> RequestValidationError:
    issue = {"type": "value_error", "loc": location, "msg": message, "input": value}
    return RequestValidationError([issue])


def check_horizon(check_in: date, horizon_days: int, *location: str) -> None:
    """BOOKING_HORIZON_DAYS: a stay may start at most that many days from today."""
    reason = beyond_horizon(check_in, horizon_days)
    if reason is not None:
        raise refuse(reason, check_in.isoformat(), *location)
