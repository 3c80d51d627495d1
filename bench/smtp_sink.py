"""`python -m bench.smtp_sink PORT`: a real SMTP server (aiosmtpd) that accepts and drops
every message, so the email consumer's SMTP step costs what SMTP costs and nothing more.

It serves on the main thread's event loop (uvloop when installed) with a deep listen
backlog: aiosmtpd's ``Controller`` runs a default loop in a side thread, which under a burst
of new sessions (one per email) refused connections and turned into the bottleneck."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from aiosmtpd.smtp import SMTP


class Sink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    handler = Sink()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="bench-sink"), "127.0.0.1", port, backlog=1024
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
