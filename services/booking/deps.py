"""FastAPI dependencies, as Annotated aliases. The objects live on app.state, built in the
lifespan (app.py): nothing is constructed at import time.

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a worker
thread, and three thread hops per request cost the booking API a measurable share of its
throughput (bench scenario 1)."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Header, Request

from services.booking.settings import BookingSettings
from shared.outbox import OutboxRelay


async def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


async def _relay(request: Request) -> OutboxRelay:
    relay: OutboxRelay = request.app.state.relay
    return relay


async def _settings(request: Request) -> BookingSettings:
    settings: BookingSettings = request.app.state.settings
    return settings


PoolDep = Annotated[asyncpg.Pool, Depends(_pool)]
RelayDep = Annotated[OutboxRelay, Depends(_relay)]
SettingsDep = Annotated[BookingSettings, Depends(_settings)]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Repeat a request safely: the same key and body return the same booking",
    ),
]
