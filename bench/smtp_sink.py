"""`python -m bench.smtp_sink PORT`: a real SMTP server (aiosmtpd) that accepts and drops
every message, so the email consumer's SMTP step costs what SMTP costs and nothing more."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

from aiosmtpd.controller import Controller


class Sink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def main() -> None:
    controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    controller.start()
    try:
        stop.wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
