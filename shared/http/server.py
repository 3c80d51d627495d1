"""The ops HTTP server of a consumer process: uvicorn on a socket bound at start-up, inside
the consumer's event loop.

It serves ``/health/live``, ``/health/ready`` and ``/metrics`` (shared/http/ops.py), plus
any routes the service adds (the notification feed). The socket is bound before anything
else starts, so a port in use is one clear start-up error, and port 0 gives a free port,
known (and logged) before serving. Uvicorn's own signal handling is switched off: the
process's SIGTERM/SIGINT handling stops everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator, Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from shared.errors import ConfigurationError, OpsServerStopped
from shared.http.ops import ops_routes
from shared.observability.health import Ops

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise ConfigurationError(
            f"the ops HTTP server cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "set HTTP_PORT to a free port, or 0 to pick one (several replicas on one host "
            "each need their own)"
        ) from exc


def ops_app(ops: Ops, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    app = Starlette(routes=[*ops_routes(), *extra_routes])
    app.state.ops = ops
    return app


class SignallessServer(uvicorn.Server):
    """Uvicorn without its signal handlers: the process (shared/stop_signals.py) owns
    SIGTERM and SIGINT and sets ``should_exit``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class OpsServer:
    def __init__(self, app: Starlette, sock: socket.socket, *, shutdown_grace: int = 2) -> None:
        self.app = app
        self._sock = sock
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=shutdown_grace,
        )
        self._server = SignallessServer(config)

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        host = self._sock.getsockname()[0]
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    async def serve(self, stop: asyncio.Event) -> None:
        """Serve until ``stop``, then give requests in flight a short grace. Raises if the
        server stops by itself."""
        log.info("ops HTTP server on %s (/health/live, /health/ready, /metrics)", self.url)
        server = asyncio.create_task(self._server.serve(sockets=[self._sock]), name="ops-http")
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait([server, stopped], return_when=asyncio.FIRST_COMPLETED)
            if server.done():
                server.result()  # raises what stopped it
                raise OpsServerStopped("the ops HTTP server stopped by itself")
        finally:
            stopped.cancel()
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await server

    def close(self) -> None:
        self._sock.close()
