"""An asyncio TCP proxy for fault injection in tests: cut, blackhole and restore a link.

Point a client at ``proxy.port`` instead of the real server, then break the link at will:
``cut()`` resets every connection, ``blackhole()`` silences them, ``deafen()`` silences only
the server's answers, ``restore()`` mends all three.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from types import TracebackType
from typing import Literal, Self

_CHUNK = 64 * 1024
_Mode = Literal["open", "cut", "blackhole", "deaf"]


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close abruptly: a zero linger makes the kernel send RST instead of a polite FIN, which is
    what a peer sees when a link really breaks mid-conversation."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class TcpProxy:
    """Forward every connection made to ``port`` to ``target_host:target_port``.

    ``cut()`` resets every open connection (both sides) and resets new ones as soon as they are
    accepted; ``blackhole()`` keeps connections open but forwards nothing (new connections are
    accepted and held without reaching the target); ``deafen()`` forwards what clients send but
    holds what the target answers (a publisher's messages arrive, its confirms never do);
    ``restore()`` goes back to forwarding, and bytes held meanwhile are delivered then. The
    listener stays open throughout, so the port never changes and URLs built from it stay
    valid.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
    ) -> None:
        self._target = (target_host, target_port)
        self._listen = (listen_host, listen_port)
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._mode: _Mode = "open"
        # Set while bytes may flow client -> target (up) and target -> client (down); the pumps
        # wait on them, which is how a blackhole or a deaf link holds traffic.
        self._up = asyncio.Event()
        self._down = asyncio.Event()
        self._up.set()
        self._down.set()
        # Each link's task and the writers of its client and (once connected) upstream sockets.
        self._links: dict[asyncio.Task[None], list[asyncio.StreamWriter]] = {}

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("TcpProxy.start() has not been called")
        return self._port

    @property
    def mode(self) -> _Mode:
        return self._mode

    @property
    def open_links(self) -> int:
        """Connections through the proxy now (forwarded or held)."""
        return len(self._links)

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("TcpProxy already started")
        self._server = await asyncio.start_server(self._accept, *self._listen)
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def cut(self) -> None:
        self._mode = "cut"
        self._up.clear()
        self._down.clear()
        await self._drop_links()

    async def blackhole(self) -> None:
        self._mode = "blackhole"
        self._up.clear()
        self._down.clear()

    async def deafen(self) -> None:
        self._mode = "deaf"
        self._up.set()
        self._down.clear()

    async def restore(self) -> None:
        self._mode = "open"
        self._up.set()
        self._down.set()

    async def stop(self) -> None:
        self._mode = "cut"
        server, self._server = self._server, None
        if server is not None:
            server.close()
        await self._drop_links()
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback that starts our own task: asyncio's task for a coroutine callback
        # reports cancellation as an error, and cut() cancels links.
        if self._mode == "cut":
            _reset(writer)
            return
        writers = [writer]
        task = asyncio.create_task(self._serve(reader, writers))
        self._links[task] = writers
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._links.pop(task, None)

    async def _drop_links(self) -> None:
        links = list(self._links.items())
        for task, writers in links:
            for writer in writers:
                _reset(writer)
            task.cancel()
        await asyncio.gather(*(task for task, _ in links), return_exceptions=True)

    async def _serve(
        self, client: asyncio.StreamReader, writers: list[asyncio.StreamWriter]
    ) -> None:
        try:
            # Blackholed: hold the client without reaching the target, like a dropped SYN.
            await self._up.wait()
            upstream, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            _reset(writers[0])  # the target is down: the client sees its connection fail
            return
        writers.append(upstream_writer)
        try:
            await asyncio.gather(
                self._pump(client, upstream_writer, writers, self._up),
                self._pump(upstream, writers[0], writers, self._down),
            )
        finally:
            for writer in writers:
                writer.close()

    async def _pump(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        writers: list[asyncio.StreamWriter],
        flowing: asyncio.Event,
    ) -> None:
        try:
            while True:
                # Waiting before the read too leaves bytes in the kernel during a blackhole,
                # so the sender feels back-pressure as it would on a stalled link.
                await flowing.wait()
                data = await source.read(_CHUNK)
                if not data or sink.is_closing():
                    break
                await flowing.wait()  # read just before a blackhole began: hold it
                sink.write(data)
                await sink.drain()
            if not sink.is_closing() and sink.can_write_eof():
                sink.write_eof()  # pass a half-close on; the other direction may go on
        except OSError:
            for writer in writers:  # one side broke: break the other side too
                _reset(writer)
