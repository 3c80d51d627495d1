"""`python -m services.booking`: serve the booking API with uvicorn."""

import signal
from types import FrameType

import uvicorn

from services.booking.app import create_app
from services.booking.settings import BookingSettings
from shared.errors import SharedError
from shared.logging_setup import configure_logging
from shared.observability.tracing import configure_tracing


def _already_stopped(signum: int, frame: FrameType | None) -> None:
    """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, which would end the
    process with -15 instead of 0; by then the work is done, so the re-raise is ignored."""


if __name__ == "__main__":
    settings = BookingSettings()
    configure_logging("booking", settings.log_level, settings.log_format)
    try:
        configure_tracing("booking", settings.otel_traces_exporter)
    except SharedError as exc:
        raise SystemExit(f"error: booking cannot start: {exc}") from exc
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _already_stopped)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        # services/booking/access_log.py logs route templates instead: uvicorn's would log
        # the booking ids in the paths.
        access_log=False,
        # The client address (rate limits) from X-Forwarded-For, for these proxies only.
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=10,
    )
