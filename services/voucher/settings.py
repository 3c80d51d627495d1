from __future__ import annotations

from pydantic import Field

from shared.settings import ConsumerSettings


class VoucherSettings(ConsumerSettings):
    """Configuration of the voucher process, read from environment variables."""

    http_port: int = Field(default=8004, ge=0, le=65535)
