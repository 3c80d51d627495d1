from __future__ import annotations

from pydantic import Field

from shared.settings import ConsumerSettings, simulated_latency


class VoucherSettings(ConsumerSettings):
    """Configuration of the voucher process, read from environment variables."""

    simulated_latency_ms: int = simulated_latency("voucher")
    # The handlers write only this service's database (the PDF goes out through the
    # outbox), so the deliveries in hand share a transaction, up to BATCH_SIZE of them.
    batch_size: int = Field(default=20, ge=1, le=1_000)
