"""Wiring for the email process: the one place its clients are built."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import asyncpg

from services.email.handlers import send_cancellation, send_confirmation
from services.email.settings import EmailSettings
from services.email.smtp import SmtpSender
from shared.consumer_service import ConsumerProcess, build_consumer_process
from shared.events import BookingCancelled, BookingConfirmed
from shared.messaging.consumer import Handler, route

SERVICE = "email"
MIGRATIONS = Path(__file__).parent / "migrations"


def make_handlers(settings: EmailSettings, sender: SmtpSender | None = None) -> dict[str, Handler]:
    sender = sender or SmtpSender.from_settings(settings)
    confirm = partial(send_confirmation, sender=sender, email_from=settings.email_from)
    cancel = partial(send_cancellation, sender=sender, email_from=settings.email_from)
    return dict([route(BookingConfirmed, confirm), route(BookingCancelled, cancel)])


async def bootstrap(
    settings: EmailSettings,
    *,
    handlers: dict[str, Handler] | None = None,
    pool: asyncpg.Pool | None = None,
) -> ConsumerProcess:
    return await build_consumer_process(
        SERVICE, settings, handlers or make_handlers(settings), MIGRATIONS, pool
    )
