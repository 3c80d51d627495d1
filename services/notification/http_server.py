"""The feed's HTTP server: uvicorn on a socket bound at start-up, inside the consumer's loop.

The socket is bound before anything else starts, so a port in use is one clear start-up
error, and port 0 gives a free port, known (and logged) before serving. Uvicorn's own
signal handling is switched off: the process's SIGTERM/SIGINT handling stops everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from services.notification.feed_hub import FeedHub
from shared.errors import ConfigurationError

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise ConfigurationError(
            f"the notification feed cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "set NOTIFICATION_HTTP_PORT to a free port, or 0 to pick one (several replicas "
            "on one host each need their own)"
        ) from exc


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the consumer process owns SIGTERM/SIGINT


class FeedServer:
    def __init__(
        self, app: ASGIApp, sock: socket.socket, hub: FeedHub, *, shutdown_grace: int = 2
    ) -> None:
        self._sock = sock
        self.hub = hub
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=shutdown_grace,
        )
        self._server = _Server(config)

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        host = self._sock.getsockname()[0]
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    async def serve(self, stop: asyncio.Event) -> None:
        """Serve the feed (and run the hub) until ``stop``; then end the open streams and
        give requests in flight a short grace."""
        log.info("notification feed on %s/feeds/{booking_id}", self.url)
        hub_stop = asyncio.Event()
        hub = asyncio.create_task(self.hub.run(hub_stop), name="notification-feed-hub")
        server = asyncio.create_task(
            self._server.serve(sockets=[self._sock]), name="notification-feed-http"
        )
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait([server, stopped], return_when=asyncio.FIRST_COMPLETED)
            if server.done():
                server.result()  # raises what stopped it
                raise RuntimeError("the notification feed server stopped by itself")
        finally:
            stopped.cancel()
            hub_stop.set()
            self.hub.close()
            self._server.should_exit = True
            for result in await asyncio.gather(server, hub, return_exceptions=True):
                if isinstance(result, Exception):
                    log.warning("notification feed: %r while stopping", result)

    def close(self) -> None:
        self._sock.close()
