"""FastAPI dependencies, as Annotated aliases. The objects live on app.state, built in the
lifespan (app.py): nothing is constructed at import time."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Header, Request

from services.booking.settings import BookingSettings
from shared.observability.health import Ops
from shared.observability.metrics import Metrics
from shared.outbox import OutboxRelay


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


def _relay(request: Request) -> OutboxRelay:
    relay: OutboxRelay = request.app.state.relay
    return relay


def _settings(request: Request) -> BookingSettings:
    settings: BookingSettings = request.app.state.settings
    return settings


def _metrics(request: Request) -> Metrics:
    ops: Ops = request.app.state.ops
    return ops.metrics


PoolDep = Annotated[asyncpg.Pool, Depends(_pool)]
RelayDep = Annotated[OutboxRelay, Depends(_relay)]
SettingsDep = Annotated[BookingSettings, Depends(_settings)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Repeat a request safely: the same key and body return the same booking",
    ),
]
