"""`python -m services.booking` serves on the event loop uvicorn.run would have picked:
uvloop, which uvicorn[standard] installs (the default asyncio loop cost the API speed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.processes import free_port, start_service, stop, wait_http

pytestmark = pytest.mark.e2e


def test_the_booking_service_serves_on_uvloop(service_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    process = start_service("booking", {**service_env, "PORT": str(port)}, tmp_path)
    try:
        wait_http(f"http://127.0.0.1:{port}/health/live")
    finally:
        code = stop(process)
    log = (tmp_path / "booking.log").read_text()
    assert code == 0, log
    assert "booking: event loop uvloop" in log, log
