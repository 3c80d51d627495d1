"""Wiring for the email process: the one place its clients are built."""

from __future__ import annotations

import os
import socket
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
    # Recorded with each email, so the spread of work over replicas can be seen.
    sent_by = f"{socket.gethostname()}:{os.getpid()}"
    confirm, cancel = (
        partial(send, sender=sender, email_from=settings.email_from, sent_by=sent_by)
        for send in (send_confirmation, send_cancellation)
    )
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
