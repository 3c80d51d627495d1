"""Wiring for the voucher process: the one place its clients are built."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from services.voucher.handlers import issue_voucher, void_voucher
from services.voucher.settings import VoucherSettings
from shared.consumer_service import ConsumerProcess, build_consumer_process
from shared.events import BookingCancelled, BookingConfirmed
from shared.messaging.handlers import Handler, route
from shared.process import Parts

SERVICE = "voucher"
MIGRATIONS = Path(__file__).parent / "migrations"


def make_handlers(settings: VoucherSettings) -> dict[str, Handler]:
    return dict(
        [
            route(BookingConfirmed, issue_voucher),
            route(BookingCancelled, void_voucher),
        ]
    )


async def bootstrap(
    settings: VoucherSettings,
    *,
    handlers: dict[str, Handler] | None = None,
    pool: asyncpg.Pool | None = None,
) -> ConsumerProcess:
    parts = Parts()
    async with parts.building():
        handlers = handlers or make_handlers(settings)
        return await build_consumer_process(parts, SERVICE, settings, handlers, MIGRATIONS, pool)
