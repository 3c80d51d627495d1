"""TcpProxy against a tiny echo server: forwarding, cut, blackhole, deafen and restore."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.support.tcp_proxy import TcpProxy

HOST = "127.0.0.1"
QUIET = 0.2  # how long "nothing arrives" is watched for


class EchoServer:
    """Echoes every byte back; counts the connections that have ended on its side."""

    def __init__(self) -> None:
        self.port = 0
        self.ended = 0
        self.ended_event = asyncio.Event()
        self.received = bytearray()
        self.received_event = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                self.received += data
                self.received_event.set()
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            self.ended += 1
            self.ended_event.set()


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    server = EchoServer()
    listener = await asyncio.start_server(server.handle, HOST, 0)
    server.port = int(listener.sockets[0].getsockname()[1])
    async with listener:
        yield server


@pytest.fixture
async def proxy(echo: EchoServer) -> AsyncIterator[TcpProxy]:
    async with TcpProxy(HOST, echo.port) as running:
        yield running


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(HOST, port)


async def send(writer: asyncio.StreamWriter, payload: bytes) -> None:
    writer.write(payload)
    await writer.drain()


async def is_closed(reader: asyncio.StreamReader) -> bool:
    """True when the peer has closed or reset the connection."""
    try:
        return await asyncio.wait_for(reader.read(1), 1) == b""
    except ConnectionError:
        return True


async def round_trip(port: int, payload: bytes) -> bytes:
    """What a fresh connection gets back for payload; b"" when it is closed or reset."""
    reader, writer = await connect(port)
    try:
        await send(writer, payload)
        return await asyncio.wait_for(reader.readexactly(len(payload)), 1)
    except (ConnectionError, asyncio.IncompleteReadError):
        return b""
    finally:
        writer.close()


async def test_bytes_flow_both_ways_through_the_proxy(proxy: TcpProxy) -> None:
    payload = bytes(range(256)) * 1024  # 256 KiB: several reads and writes per direction
    reader, writer = await connect(proxy.port)
    _, echoed = await asyncio.gather(send(writer, payload), reader.readexactly(len(payload)))
    assert echoed == payload
    writer.close()


async def test_cut_closes_open_connections_and_restore_reopens_the_same_port(
    proxy: TcpProxy, echo: EchoServer
) -> None:
    port = proxy.port
    reader, writer = await connect(port)
    await send(writer, b"hello")
    assert await reader.readexactly(5) == b"hello"

    await proxy.cut()

    assert await is_closed(reader)
    await asyncio.wait_for(echo.ended_event.wait(), 1)  # the target's side was closed too
    assert await round_trip(port, b"anyone?") == b""

    await proxy.restore()

    assert proxy.port == port
    assert await round_trip(port, b"back") == b"back"
    writer.close()


async def test_blackhole_keeps_connections_open_but_forwards_nothing_until_restored(
    proxy: TcpProxy, echo: EchoServer
) -> None:
    reader, writer = await connect(proxy.port)
    await send(writer, b"before")
    assert await reader.readexactly(6) == b"before"

    await proxy.blackhole()
    await send(writer, b"held")
    late_reader, late_writer = await connect(proxy.port)
    await send(late_writer, b"late")

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(4), QUIET)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(late_reader.readexactly(4), QUIET)
    assert echo.ended == 0  # nothing was closed, only silenced

    await proxy.restore()

    assert await asyncio.wait_for(reader.readexactly(4), 1) == b"held"
    assert await asyncio.wait_for(late_reader.readexactly(4), 1) == b"late"
    writer.close()
    late_writer.close()


async def test_a_deaf_link_delivers_what_clients_send_but_holds_the_answers(
    proxy: TcpProxy, echo: EchoServer
) -> None:
    reader, writer = await connect(proxy.port)
    await proxy.deafen()
    await send(writer, b"published")

    await asyncio.wait_for(echo.received_event.wait(), 1)
    await asyncio.sleep(QUIET)  # the whole payload, in one read or several
    assert bytes(echo.received) == b"published"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(9), QUIET)

    await proxy.restore()

    assert await asyncio.wait_for(reader.readexactly(9), 1) == b"published"
    writer.close()


async def test_stop_closes_connections_and_the_listening_port(echo: EchoServer) -> None:
    proxy = TcpProxy(HOST, echo.port)
    await proxy.start()
    reader, writer = await connect(proxy.port)

    await proxy.stop()

    assert await is_closed(reader)
    with pytest.raises(ConnectionRefusedError):
        await connect(proxy.port)
    writer.close()


async def test_a_refused_target_closes_the_client_connection(echo: EchoServer) -> None:
    async with TcpProxy(HOST, echo.port) as proxy:
        pass  # only to get a port that nothing listens on any more
    async with TcpProxy(HOST, proxy.port) as dead_end:
        assert await round_trip(dead_end.port, b"hello") == b""
