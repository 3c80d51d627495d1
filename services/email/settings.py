from __future__ import annotations

from shared.settings import ConsumerSettings


class EmailSettings(ConsumerSettings):
    """Configuration of the email process, read from environment variables."""
