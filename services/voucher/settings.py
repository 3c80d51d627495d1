from __future__ import annotations

from shared.settings import ConsumerSettings


class VoucherSettings(ConsumerSettings):
    """Configuration of the voucher process, read from environment variables."""
