"""Wiring for the email process: the one place its clients are built."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import asyncpg

from services.email.handlers import send_confirmation
from services.email.settings import EmailSettings
from shared.consumer_service import ConsumerProcess, build_consumer_process
from shared.events import BookingConfirmed
from shared.messaging.consumer import Handler, route

SERVICE = "email"
MIGRATIONS = Path(__file__).parent / "migrations"


def make_handlers(settings: EmailSettings) -> dict[str, Handler]:
    latency = settings.simulated_latency_ms / 1000
    return dict([route(BookingConfirmed, partial(send_confirmation, simulated_latency=latency))])


async def bootstrap(
    settings: EmailSettings,
    *,
    handlers: dict[str, Handler] | None = None,
    pool: asyncpg.Pool | None = None,
) -> ConsumerProcess:
    return await build_consumer_process(
        SERVICE, settings, handlers or make_handlers(settings), MIGRATIONS, pool
    )
