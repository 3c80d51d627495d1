"""The real services, wired in-process for integration tests: the booking app through its
lifespan, consumers through their bootstrap, each against the test's own database and vhost."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from services.booking.app import create_app
from services.booking.settings import BookingSettings
from services.email import bootstrap as email_bootstrap
from services.email.settings import EmailSettings
from services.notification import bootstrap as notification_bootstrap
from services.notification.settings import NotificationSettings
from services.voucher import bootstrap as voucher_bootstrap
from services.voucher.settings import VoucherSettings
from shared.consumer_service import ConsumerProcess
from shared.messaging.handlers import Handler
from tests.support.infra import TestEnv
from tests.support.processes import NO_RATE_LIMITS, SMALL_POOL
from tests.support.smtp import SmtpRecorder, smtp_server

CONSUMERS: dict[str, tuple[Any, Any]] = {
    "email": (EmailSettings, email_bootstrap.bootstrap),
    "voucher": (VoucherSettings, voucher_bootstrap.bootstrap),
    "notification": (NotificationSettings, notification_bootstrap.bootstrap),
}
# Each consumer's record of its effect: one row per handled BookingConfirmed.
EFFECT_TABLES = {
    "email": "email.emails",
    "voucher": "voucher.vouchers",
    "notification": "notification.notifications",
}


def stay(starts_in_days: int = 30, nights: int = 2) -> tuple[str, str]:
    check_in = date.today() + timedelta(days=starts_in_days)
    return check_in.isoformat(), (check_in + timedelta(days=nights)).isoformat()


def booking_body(**overrides: Any) -> dict[str, Any]:
    check_in, check_out = stay()
    body = {
        "hotel_id": 1,
        "room_type": "standard",
        "check_in": check_in,
        "check_out": check_out,
        "guest_name": "Ada Lovelace",
        "guest_email": "ada@example.com",
    }
    body.update(overrides)
    return body


def with_token(created: dict[str, Any]) -> dict[str, str]:
    """The headers that show a booking's guest details, its voucher, and cancel it: its
    management token, from the answer to POST /bookings."""
    return {"X-Booking-Token": created["management_token"]}


def spread_booking(i: int) -> dict[str, Any]:
    """The i-th of many bookings, spread over the calendar so none runs out of rooms."""
    check_in, check_out = stay(10 + i % 300, nights=1)
    return booking_body(check_in=check_in, check_out=check_out)


@asynccontextmanager
async def booking_api(
    env: TestEnv, amqp_url: str | None = None, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    defaults: dict[str, Any] = {
        "database_url": env.database_url,
        "amqp_url": amqp_url or env.amqp_url(),
        "outbox_sweep_interval": 0.2,
        "outbox_retry_max_delay": 0.5,
        "amqp_connect_timeout": 2.0,
        "amqp_publish_timeout": 2.0,
        **{name.lower(): value for name, value in {**SMALL_POOL, **NO_RATE_LIMITS}.items()},
    }
    settings = BookingSettings(**{**defaults, **overrides})
    app = create_app(settings)
    async with (
        LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://booking.test"
        ) as client,
    ):
        yield client, app


@asynccontextmanager
async def running_consumer(
    service: str,
    env: TestEnv,
    *,
    handlers: dict[str, Handler] | None = None,
    amqp_url: str | None = None,
    **overrides: Any,
) -> AsyncIterator[ConsumerProcess]:
    settings_class, bootstrap = CONSUMERS[service]
    defaults: dict[str, Any] = {
        "database_url": env.database_url,
        "amqp_url": amqp_url or env.amqp_url(),
        "retry_base_delay": 0.05,
        "retry_max_delay": 0.2,
        "amqp_connect_timeout": 2.0,
        "amqp_publish_timeout": 2.0,
        "prefetch": 20,
        "db_pool_size": 5,
        "http_port": 0,  # the ops server on a free port: tests run side by side
    }
    settings = settings_class(**{**defaults, **overrides})
    process: ConsumerProcess = await bootstrap(settings, handlers=handlers)
    stop = asyncio.Event()
    task = asyncio.create_task(process.run(stop))
    try:
        await wait_until(lambda: process.consumer.consuming, what=f"{service} consuming")
        yield process
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await process.close()


@asynccontextmanager
async def all_consumers(
    env: TestEnv, smtp: SmtpRecorder | None = None, **overrides: Any
) -> AsyncIterator[dict[str, ConsumerProcess]]:
    """The three consumers; email sends to ``smtp``, or to a real SMTP server of its own."""
    async with contextlib.AsyncExitStack() as stack:
        if smtp is None:
            smtp = await stack.enter_async_context(smtp_server())
        yield await stack.enter_async_context(_three_consumers(env, smtp.port, **overrides))


@asynccontextmanager
async def _three_consumers(
    env: TestEnv, smtp_port: int, **overrides: Any
) -> AsyncIterator[dict[str, ConsumerProcess]]:
    async with (
        running_consumer("email", env, smtp_port=smtp_port, **overrides) as email,
        running_consumer("voucher", env, **overrides) as voucher,
        running_consumer("notification", env, **overrides) as notification,
    ):
        yield {"email": email, "voucher": voucher, "notification": notification}


async def wait_until(
    condition: Callable[[], bool] | Callable[[], Awaitable[bool]],
    *,
    timeout: float = 20.0,
    what: str = "condition",
    not_yet: tuple[type[BaseException], ...] = (),
) -> None:
    """Poll ``condition``; exceptions in ``not_yet`` count as "not yet true"."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
            if isinstance(result, Awaitable):
                result = await result
        except not_yet:
            result = False
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def fetchval(env: TestEnv, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(env.database_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def effects(env: TestEnv, service: str, booking_id: str | None = None) -> int:
    table = EFFECT_TABLES[service]
    try:
        if booking_id is None:
            return int(await fetchval(env, f"SELECT count(*) FROM {table}"))
        return int(
            await fetchval(
                env, f"SELECT count(*) FROM {table} WHERE booking_id = $1::uuid", booking_id
            )
        )
    except asyncpg.UndefinedTableError:
        return 0


async def equals(count: Awaitable[int], expected: int) -> bool:
    """For wait_until: ``lambda: equals(effects(env, "email"), 3)``."""
    return await count == expected


async def at_least(count: Awaitable[int], expected: int) -> bool:
    return await count >= expected
