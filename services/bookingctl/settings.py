"""Configuration of the ``bookingctl`` process, read from environment variables."""

from __future__ import annotations

from pydantic import Field

from shared.settings import CommonSettings


class DlqSettings(CommonSettings):
    """The broker and database of the system, plus how replays stream through a queue."""

    db_pool_size: int = Field(default=2, ge=1, le=20)
    # Messages published per pipelined batch of confirms; the consumer's prefetch is twice
    # this, so the next batch arrives while the current one is being confirmed.
    dlq_batch_size: int = Field(default=500, ge=1, le=5_000)
    # A scan ends when no message arrives for this long (e.g. another replay took the rest).
    dlq_idle_timeout: float = Field(default=2.0, gt=0)
    # Who is recorded in the audit table; defaults to user@host.
    dlq_actor: str | None = None
