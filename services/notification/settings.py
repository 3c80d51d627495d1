from __future__ import annotations

from shared.settings import ConsumerSettings


class NotificationSettings(ConsumerSettings):
    """Configuration of the notification process, read from environment variables."""
