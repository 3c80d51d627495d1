"""`python -m services.booking`: serve the booking API with uvicorn."""

import uvicorn

from services.booking.app import create_app
from services.booking.settings import BookingSettings
from shared.logging_setup import configure_logging

if __name__ == "__main__":
    settings = BookingSettings()
    configure_logging("booking", settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=10,
    )
