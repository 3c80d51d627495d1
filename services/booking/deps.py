"""FastAPI dependencies, as Annotated aliases. The objects live on app.state, built in the
lifespan (app.py): nothing is constructed at import time.

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a worker
thread, and three thread hops per request cost the booking API a measurable share of its
throughput (bench scenario 1)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Header, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator

from services.booking.console.jobs import Jobs
from services.booking.console.session import Session, action, session
from services.booking.placing import RoomFactsCache
from services.booking.rate_limit import BookingRateLimits
from services.booking.settings import BookingSettings
from shared.deadletters.groups import FailureGroups
from shared.deadletters.operations import DeadLetterOps
from shared.observability.metrics import Metrics
from shared.outbox.relay import OutboxRelay

# An Idempotency-Key is a token (the IETF draft makes it a structured-field string): printable
# ASCII. It is stored in PostgreSQL text, which cannot hold NUL.
_PRINTABLE_ASCII = r"^[\x20-\x7e]+$"


def _printable_ascii(value: str) -> str:
    if not all(" " <= ch <= "~" for ch in value):
        raise ValueError("must be printable ASCII: no NUL or other control characters")
    return value


# auto_error=False: a missing header is ours to answer (401 with WWW-Authenticate, below).
_bearer = HTTPBearer(auto_error=False, description="The ADMIN_TOKEN of the booking service")
# A header, never a query parameter: query strings end up in access logs and proxies' logs.
# As a security scheme, the docs UI offers it under "Authorize".
BOOKING_TOKEN_HEADER = "X-Booking-Token"
_booking_token = APIKeyHeader(
    name=BOOKING_TOKEN_HEADER,
    scheme_name="BookingToken",
    auto_error=False,  # optional on GET; the use cases answer 401 where it is needed
    description=(
        "The booking's management_token, from the answer to POST /bookings: needed for the "
        "guest's details, the voucher and cancelling"
    ),
)


async def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


async def _relay(request: Request) -> OutboxRelay:
    relay: OutboxRelay = request.app.state.relay
    return relay


async def _settings(request: Request) -> BookingSettings:
    settings: BookingSettings = request.app.state.settings
    return settings


@dataclass(frozen=True)
class Desk:
    """Everything POST /bookings uses, as one dependency: the busiest route resolves one
    instead of six."""

    pool: asyncpg.Pool
    relay: OutboxRelay
    settings: BookingSettings
    metrics: Metrics
    limits: BookingRateLimits
    rooms: RoomFactsCache


async def _desk(request: Request) -> Desk:
    desk: Desk = request.app.state.desk
    return desk


async def _admit_address(request: Request) -> None:
    """RateLimited (429) when the client's address has made too many booking requests.
    The address is the peer's, or X-Forwarded-For's from a proxy in FORWARDED_ALLOW_IPS."""
    limits: BookingRateLimits = request.app.state.rate_limits
    limits.admit_address(request.client.host if request.client else None)


async def _admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> DeadLetterOps:
    """The dead-letter operations, for a caller with the admin token. Without a configured
    token the admin API is disabled (503), never open."""
    settings: BookingSettings = request.app.state.settings
    if settings.admin_token is None or not settings.admin_enabled:
        raise HTTPException(503, "admin API disabled: set ADMIN_TOKEN")
    expected = settings.admin_token.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials is not None else b""
    # compare_digest: the time taken does not tell how much of a guess was right.
    if credentials is None or not secrets.compare_digest(given, expected):
        raise HTTPException(
            401, "missing or wrong admin token", headers={"WWW-Authenticate": "Bearer"}
        )
    ops: DeadLetterOps = request.app.state.dlq
    return ops


async def _failure_groups(request: Request) -> FailureGroups:
    groups: FailureGroups = request.app.state.failure_groups
    return groups


async def _admin_groups(
    request: Request, _ops: Annotated[DeadLetterOps, Depends(_admin)]
) -> FailureGroups:
    """The failure groups, for a caller with the admin token (as _admin)."""
    return await _failure_groups(request)


async def _console_jobs(request: Request) -> Jobs:
    jobs: Jobs = request.app.state.console_jobs
    return jobs


PoolDep = Annotated[asyncpg.Pool, Depends(_pool)]
RelayDep = Annotated[OutboxRelay, Depends(_relay)]
SettingsDep = Annotated[BookingSettings, Depends(_settings)]
IdempotencyKeyHeader = Annotated[
    Annotated[str, AfterValidator(_printable_ascii)] | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description=(
            "Repeat a request safely: the same key and body return the same booking. "
            "Printable ASCII, 1 to 255 characters."
        ),
        json_schema_extra={"pattern": _PRINTABLE_ASCII},
    ),
]
AdminDep = Annotated[DeadLetterOps, Depends(_admin)]
BookingTokenDep = Annotated[str | None, Security(_booking_token)]
DeskDep = Annotated[Desk, Depends(_desk)]
# For a route's ``dependencies=[...]``: counts the request against its address's limit.
ADDRESS_RATE_LIMIT = Depends(_admit_address)
FailureGroupsDep = Annotated[FailureGroups, Depends(_failure_groups)]
# The admin API with its bearer token, and its failure groups.
AdminGroupsDep = Annotated[FailureGroups, Depends(_admin_groups)]
# The dead-letter console: a signed-in session; for a change, also its CSRF token.
ConsoleDep = Annotated[Session, Depends(session)]
ConsoleActionDep = Annotated[Session, Depends(action)]
ConsoleJobsDep = Annotated[Jobs, Depends(_console_jobs)]
