"""Running one ``bookingctl`` command: its clients built from the settings (the CLI's wiring
point), its errors turned into one line on stderr and an exit code."""

from __future__ import annotations

import asyncio
import getpass
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from services.bookingctl.settings import DlqSettings
from shared.db.pool import create_pool
from shared.deadletters.audit import AuditStore
from shared.deadletters.errors import DlqError, InvalidRequest, UnknownGroup, UnknownQueue
from shared.deadletters.operations import DeadLetterOps, OpsConfig
from shared.errors import ConfigurationError, SharedError
from shared.settings import load_settings

T = TypeVar("T")


def fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def run(work: Callable[[DeadLetterOps], Awaitable[T]], *, audited: bool) -> T:
    """Build the clients for one command (the CLI's wiring point), run it, close them."""
    try:
        settings = load_settings(DlqSettings)
    except ConfigurationError as exc:
        fail(f"bad configuration: {exc}", 2)
        raise

    async def main() -> T:
        config = OpsConfig(
            amqp_url=settings.amqp_url,
            connect_timeout=settings.amqp_connect_timeout,
            publish_timeout=settings.amqp_publish_timeout,
            batch_size=settings.dlq_batch_size,
            idle_timeout=settings.dlq_idle_timeout,
        )
        if not audited:
            return await work(DeadLetterOps(config))
        pool = await create_pool(
            settings.database_url,
            max_size=settings.db_pool_size,
            command_timeout=settings.db_command_timeout,
            connect_timeout=settings.db_acquire_timeout,
        )
        try:
            audit = AuditStore(pool, settings.db_acquire_timeout, migrate=settings.migrate_on_start)
            return await work(DeadLetterOps(config, audit))
        finally:
            await asyncio.wait_for(pool.close(), settings.db_acquire_timeout)

    try:
        return asyncio.run(main())
    except (UnknownQueue, UnknownGroup, InvalidRequest) as exc:
        fail(str(exc), 2)
    except (DlqError, SharedError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted; messages not yet confirmed stay in the dead-letter queue", 130)
    raise AssertionError("unreachable")


def actor() -> str:
    configured = load_settings(DlqSettings).dlq_actor
    return configured or f"cli:{getpass.getuser()}@{socket.gethostname()}"
