"""Wiring for the email process: the one place its clients are built."""

from __future__ import annotations

import os
import socket
from functools import partial
from pathlib import Path

import asyncpg

from services.email.handlers import prepare_email, send_cancellation, send_confirmation
from services.email.settings import EmailSettings
from services.email.smtp import SmtpSender
from shared.consumer_service import ConsumerProcess, build_consumer_process
from shared.db.retention import created_before
from shared.events import BookingCancelled, BookingConfirmed
from shared.messaging.handlers import Handler, route_prepared
from shared.process import Parts

SERVICE = "email"
MIGRATIONS = Path(__file__).parent / "migrations"


def make_handlers(settings: EmailSettings, sender: SmtpSender) -> dict[str, Handler]:
    # Recorded with each email, so the spread of work over replicas can be seen.
    sent_by = f"{socket.gethostname()}:{os.getpid()}"
    prepare = partial(prepare_email, sender=sender, email_from=settings.email_from)
    return dict(
        [
            route_prepared(BookingConfirmed, prepare, partial(send_confirmation, sent_by=sent_by)),
            route_prepared(BookingCancelled, prepare, partial(send_cancellation, sent_by=sent_by)),
        ]
    )


async def bootstrap(
    settings: EmailSettings,
    *,
    handlers: dict[str, Handler] | None = None,
    pool: asyncpg.Pool | None = None,
) -> ConsumerProcess:
    parts = Parts()
    async with parts.building():
        sender = parts.closes(SmtpSender.from_settings(settings), SmtpSender.close)
        handlers = handlers or make_handlers(settings, sender)
        emails = created_before("email.emails", "event_id", settings.emails_max_age)
        return await build_consumer_process(
            parts, SERVICE, settings, handlers, MIGRATIONS, pool, retention=[emails]
        )
