from __future__ import annotations

from pydantic import Field

from shared.settings import ConsumerSettings, simulated_latency


class VoucherSettings(ConsumerSettings):
    """Configuration of the voucher process, read from environment variables."""

    simulated_latency_ms: int = simulated_latency("voucher")
    http_port: int = Field(default=8004, ge=0, le=65535)
